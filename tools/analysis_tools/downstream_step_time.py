"""Time of one training step of downstream configs, at the input of their
tests.

Usage: python tools/analysis_tools/downstream_step_time.py [CONFIG ...]
       [--steps 5] [--warmup 1]

Each config (default: Mask R-CNN KR ConvNeXt-T, UPerNet KR Swin-T and
ODConv's eight detection configs with ODConv 4x and KR 4x) runs in the real
mmengine Runner on the tiny generated dataset of tests/test_downstream.py
(:mod:`mmkr.testing.downstream`: 2 images a step, COCO 96x96 or ADE20K
64x64), its backbone from its initialisation. A step is the time from the
Runner's ``before_train_iter`` to its ``after_train_iter``: the data
preprocessor, forward, losses, backward and the optimizer step. The first
``--warmup`` steps are not counted; the median and the minimum of the next
``--steps`` are printed.
"""
import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import List

import torch
from mmengine.hooks import Hook

DOWNSTREAM = 'configs/downstream/'
DEFAULT_CONFIGS = [
    DOWNSTREAM + 'mask-rcnn_kr-convnext-tiny_fpn_1x_coco.py',
    DOWNSTREAM + 'upernet_kr-swin-tiny_4xb4-160k_ade20k-512x512.py',
] + [
    f'{DOWNSTREAM}{det}-rcnn_{method}-{net}_fpn_1x_coco.py'
    for det in ('faster', 'mask') for method in ('odconv4', 'kr4')
    for net in ('resnet50', 'mobilenet-v2')
]


class StepTimer(Hook):
    """Records the wall time of every training iteration, from the last
    ``before_train_iter`` hook to the first ``after_train_iter`` one."""
    priority = 'LOWEST'

    def __init__(self):
        self.times: List[float] = []
        self._start = 0.

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._start = time.perf_counter()

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        self.times.append(time.perf_counter() - self._start)


def step_times(config: str, steps: int, warmup: int) -> List[float]:
    """The times of ``steps`` training steps of ``config`` after
    ``warmup`` steps."""
    from mmengine.runner import Runner

    from mmkr.testing.downstream import tiny_run_config
    with tempfile.TemporaryDirectory() as root:
        cfg = tiny_run_config(config, Path(root), iters=warmup + steps)
        runner = Runner.from_cfg(cfg)
        timer = StepTimer()
        # after the Runner's own hooks of the same priority
        runner.register_hook(timer)
        runner.train()
    return timer.times[warmup:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs',
                        nargs='*',
                        default=DEFAULT_CONFIGS,
                        help='downstream configs (default: %(default)s)')
    parser.add_argument('--steps',
                        type=int,
                        default=5,
                        help='timed steps per config')
    parser.add_argument('--warmup',
                        type=int,
                        default=1,
                        help='steps run before the timed ones')
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error(f'--steps must be >= 1 and --warmup >= 0, got '
                     f'--steps {args.steps} --warmup {args.warmup}')
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    print(f'training step of 2 images on {device} ({torch.get_num_threads()}'
          f' threads; load average {os.getloadavg()[0]:.2f}), median and '
          f'minimum of {args.steps} after {args.warmup} warm-up\n')
    print('| config | steps | median (s) | min (s) |\n|---|---|---|---|')
    for config in args.configs:
        times = step_times(config, args.steps, args.warmup)
        print(
            f'| {Path(config).stem} | {len(times)} | '
            f'{statistics.median(times):.3f} | {min(times):.3f} |',
            flush=True)


if __name__ == '__main__':
    main()
