"""Start a KR model from a trained mmkr dynamic network (e.g. a converted
ODConv checkpoint) for fine-tuning.

    python tools/model_converters/odconv_to_mmkr.py \
        od_resnet18_4x.pth.tar checkpoints/resnet18_odconv4_in1k
    python tools/model_converters/dynamic_to_kr.py \
        configs/kr/resnet18_kr4_ft-from-odconv4.py \
        checkpoints/resnet18_odconv4_in1k-<hash>.pth \
        checkpoints/resnet18_kr4_from-odconv4.pth

The KR model of CONFIG computes the source network's logits at step 0 (see
:mod:`mmkr.models.utils.dynamic_to_kr`). The output file must not exist.
"""
import argparse
import os.path as osp

import torch

from mmkr.models.utils import convert_dynamic_to_kr
from mmkr.models.utils.authors_checkpoints import build_model
from mmkr.utils import load_weights


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config of the KR model')
    parser.add_argument('source', help='mmkr checkpoint of the trained '
                        'dynamic network (local path)')
    parser.add_argument('out', help='KR checkpoint to write')
    parser.add_argument(
        '--noise-std', type=float, default=0.01,
        help='zero-mean perturbation of the K candidates of the layers '
        'static in the source, relative to their kernel std')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    if osp.exists(args.out):
        raise FileExistsError(f'{args.out} exists; not overwriting it')
    model = build_model(args.config)
    model.init_weights()
    source = load_weights(args.source, map_location='cpu')
    state = convert_dynamic_to_kr(source['state_dict'], model,
                                  args.noise_std, args.seed)
    model.load_state_dict(state, strict=True)
    meta = dict(converted_from=osp.basename(args.source),
                config=osp.basename(args.config), noise_std=args.noise_std,
                seed=args.seed)
    torch.save(dict(meta=meta, state_dict=state), args.out)
    print(f'{args.out}: {len(state)} tensors from {args.source}')


if __name__ == '__main__':
    main()
