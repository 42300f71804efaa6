"""Export an mmpretrain classifier (KR models included) to ONNX.

The graph maps images (B, 3, H, W), normalised as the model's data
preprocessor would, to class logits (B, num_classes). With
``--dynamic-export`` the batch axis is dynamic: the KR layers switch to
their batch-agnostic execution paths while a graph is captured (see
:class:`mmkr.models.layers.DynamicConv2d`), so no batch size is baked into a
conv's ``group``. The export goes through ``torch.export`` (the FFT of the d_0
encoder has no TorchScript ONNX symbolic). ``--verify`` runs the file in
onnxruntime at batch 1 and 3 (1 only for a static export) and compares it
with PyTorch.

Example::

    python tools/deployment/pytorch2onnx.py configs/kr/resnet18_kr4.py \\
        work_dirs/resnet18_kr4/epoch_100.pth --output-file kr4.onnx \\
        --dynamic-export --verify
"""
import argparse
import os.path as osp

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint


def parse_args():
    parser = argparse.ArgumentParser(
        description='Export a classifier to ONNX (logits output)')
    parser.add_argument('config', help='model config')
    parser.add_argument(
        'checkpoint', nargs='?',
        help='checkpoint (default: the weights drawn at construction)')
    parser.add_argument('--output-file', required=True,
                        help='the .onnx file to write')
    parser.add_argument('--shape', type=int, nargs=2, default=[224, 224],
                        metavar=('H', 'W'), help='input image size')
    parser.add_argument('--dynamic-export', action='store_true',
                        help='make the batch axis dynamic')
    parser.add_argument('--opset-version', type=int, default=18)
    parser.add_argument('--verify', action='store_true',
                        help='compare onnxruntime with PyTorch')
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='--verify: largest absolute logit difference')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing --output-file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config')
    args = parser.parse_args()
    if osp.exists(args.output_file) and not args.overwrite:
        parser.error(f'{args.output_file} exists; pass --overwrite to '
                     'replace it')
    return args


class LogitsModel(nn.Module):
    """images -> logits, the graph that is exported."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images, mode='tensor')


def build_model(config: str, checkpoint=None, cfg_options=None) -> nn.Module:
    import mmkr  # noqa: F401 registers the KR modules and safe loading
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    classifier = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(classifier, checkpoint, map_location='cpu')
    return LogitsModel(classifier).eval()


def export(model: nn.Module, output_file: str, shape, dynamic: bool,
           opset_version: int):
    # batch 2 as the example: torch.export treats a size of 1 as a constant
    images = torch.randn(2 if dynamic else 1, 3, *shape)
    dynamic_shapes = ({
        'images': {
            0: torch.export.Dim('batch')
        }
    } if dynamic else None)
    torch.onnx.export(
        model, (images, ),
        output_file,
        input_names=['images'],
        output_names=['logits'],
        dynamic_shapes=dynamic_shapes,
        opset_version=opset_version,
        dynamo=True)


def verify(model: nn.Module, output_file: str, shape, dynamic: bool,
           tolerance: float) -> float:
    """The largest |logit difference| of onnxruntime vs PyTorch; raises
    above ``tolerance``."""
    import onnxruntime
    session = onnxruntime.InferenceSession(
        output_file, providers=['CPUExecutionProvider'])
    worst = 0.0
    for batch in ((1, 3) if dynamic else (1, )):
        images = torch.randn(batch, 3, *shape)
        with torch.no_grad():
            expected = model(images).numpy()
        got = session.run(None, {'images': images.numpy()})[0]
        if got.shape != expected.shape:
            raise RuntimeError(f'batch {batch}: onnxruntime gives shape '
                               f'{got.shape}, PyTorch {expected.shape}')
        diff = float(np.abs(got - expected).max())
        print(f'batch {batch}: max |onnxruntime - PyTorch| = {diff:.3g}')
        if diff > tolerance:
            raise RuntimeError(f'batch {batch}: onnxruntime differs from '
                               f'PyTorch by {diff:.3g} > {tolerance}')
        worst = max(worst, diff)
    return worst


def main():
    args = parse_args()
    model = build_model(args.config, args.checkpoint, args.cfg_options)
    export(model, args.output_file, args.shape, args.dynamic_export,
           args.opset_version)
    print(f'wrote {args.output_file}')
    if args.verify:
        verify(model, args.output_file, args.shape, args.dynamic_export,
               args.tolerance)


if __name__ == '__main__':
    main()
