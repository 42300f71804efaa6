"""Turn a training checkpoint into a model-zoo file.

    python tools/model_converters/publish_model.py \
        work_dirs/resnet18_kr4/epoch_100.pth resnet18_kr4_in1k

writes ``resnet18_kr4_in1k-<sha256[:8]>.pth`` with only ``meta`` and
``state_dict`` (no optimizer, schedulers or message hub), which loads with
``torch.load(weights_only=True)`` and passes mmkr's download check.
"""
import argparse

from mmkr.utils import publish_checkpoint
from mmkr.utils.checkpoint import load_training_checkpoint


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('in_file', help='training checkpoint (local path)')
    parser.add_argument(
        'out_stem', help='output name without hash and extension')
    return parser.parse_args()


def main():
    args = parse_args()
    path = publish_checkpoint(load_training_checkpoint(args.in_file),
                              args.out_stem)
    print(path)


if __name__ == '__main__':
    main()
