"""Run by tests/test_autotune.py under torchrun (two gloo processes): each
rank autotunes the same layer with a timer that prefers another path on
each rank, and writes the path it ran to OUT_DIR/rank{RANK}.txt."""
import os
import sys

import torch
import torch.distributed as dist

from mmkr.models.layers import DynamicConv2d
from mmkr.models.layers.autotune import AUTOTUNER


def main(out_dir: str):
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    # rank 0 finds 'unfold' fastest, rank 1 'kfold'
    preferred = ('unfold', 'kfold')[rank]
    AUTOTUNER.timer = lambda path, run: 0. if path == preferred else 1.
    layer = DynamicConv2d(8, 12, 3, padding=1, kernel_num=4)
    layer.path = 'autotune'
    layer.forward_kr(torch.randn(2, 8, 9, 9))
    (choice, ) = AUTOTUNER.choices.values()
    with open(os.path.join(out_dir, f'rank{rank}.txt'), 'w') as f:
        f.write(f'{layer.last_path} {choice}')
    dist.destroy_process_group()


if __name__ == '__main__':
    main(sys.argv[1])
