"""Convert a static mmpretrain checkpoint into a KR checkpoint for fine-tuning.

    python tools/model_converters/static_to_kr.py configs/kr/resnet18_kr4.py \
        https://download.openmmlab.com/mmclassification/v0/resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth \
        checkpoints/resnet18_kr4_from-static.pth

The source may also be a trained mmkr dynamic network of the KR model's
method, e.g. an ODConv or KernelWarehouse checkpoint converted from its
authors' file (odconv_to_mmkr.py, kernelwarehouse_to_mmkr.py; KR on KW:
configs/kr/resnet18_kw4x_kr_ft-from-kw4x.py); it is told apart by the
layers' method codes:

    python tools/model_converters/static_to_kr.py \
        configs/kr/resnet18_kr4_ft-from-odconv4.py \
        checkpoints/resnet18_odconv4_in1k-<hash>.pth \
        checkpoints/resnet18_kr4_from-odconv4.pth

The KR model of CONFIG computes the source model's logits at step 0 (see
:mod:`mmkr.models.utils.static_to_kr` and :mod:`~.dynamic_to_kr`); fine-tune
it with e.g. configs/kr/resnet18_kr4_ft-from-static.py. The output file
must not exist.
"""  # noqa: E501
import argparse
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import CheckpointLoader
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401  (registers the KR modules and the safe loader)
from mmkr.models.utils import convert_dynamic_to_kr, convert_static_to_kr


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config of the KR model')
    parser.add_argument(
        'static', help='static (or mmkr dynamic) checkpoint: path or URL')
    parser.add_argument('out', help='KR checkpoint to write')
    parser.add_argument(
        '--noise-std', type=float, default=0.01,
        help='zero-mean perturbation of the K candidates, relative to the '
        'static kernel std (breaks their symmetry; 0 keeps them equal)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main():
    args = parse_args()
    if osp.exists(args.out):
        raise FileExistsError(f'{args.out} exists; not overwriting it')
    init_default_scope('mmpretrain')
    model = MODELS.build(Config.fromfile(args.config).model)
    model.init_weights()
    static = CheckpointLoader.load_checkpoint(args.static, map_location='cpu')
    source = static.get('state_dict', static)
    dynamic = any(key.endswith('.method_code') for key in source)
    convert = convert_dynamic_to_kr if dynamic else convert_static_to_kr
    state = convert(source, model, args.noise_std, args.seed)
    model.load_state_dict(state, strict=True)
    meta = dict(
        converted_from=args.static,
        config=osp.basename(args.config),
        noise_std=args.noise_std,
        seed=args.seed)
    torch.save(dict(meta=meta, state_dict=state), args.out)
    print(f'{args.out}: {len(state)} tensors from {args.static}')


if __name__ == '__main__':
    main()
