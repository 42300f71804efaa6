"""Class activation maps (Grad-CAM and its relatives) of a KR model.

For each image, the input and the CAM of each target layer for the class
the model predicts (or ``--target-category``), written as one PNG: a column
per image, a row for the inputs and one per target layer, each cell
``--size`` x ``--size`` pixels::

    python tools/visualization/vis_cam.py CONFIG CHECKPOINT img1.png img2.png \
        --out cam.png --target-layers layer1.1.conv2 layer2.1.conv2

Target layers are named as in the wrapped backbone of the KR model (as in
``KRBackbone.dynamic_names``: ``layer4.1.conv2``, a block such as
``layer3``, or ``layers.10.ffn.layers.1`` in a ViT, whose tokens are laid
out as a square map without the class token). By default: the last dynamic
layer of every stage (stages as :func:`mmkr.analysis.attention.stage_of`
names them). A map of 1 x 1 (the last stage of a ResNet on 32 x 32 digits)
has nothing to localise and comes out flat.

Uses the ``grad-cam`` package (>= 1.5). mmpretrain 1.2.0's own
``vis_cam.py`` passes ``use_cuda``, which grad-cam 1.5 no longer takes.
"""
import argparse
import math
import os
import os.path as osp

import numpy as np
import pytorch_grad_cam
import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.dataset import Compose, default_collate
from mmpretrain import get_model
from mmpretrain.registry import TRANSFORMS
from PIL import Image
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import mmkr  # noqa: F401  (registers mmkr's modules)
from mmkr.analysis.attention import stage_of
from mmkr.models.backbones import KRBackbone

METHODS = ('GradCAM', 'GradCAMPlusPlus', 'XGradCAM', 'HiResCAM', 'LayerCAM',
           'EigenCAM')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Grad-CAM of a KR model for some images, as one PNG')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out', required=True, help='the PNG to write')
    parser.add_argument(
        '--target-layers', nargs='+',
        help='layers of the wrapped backbone, e.g. layer4.1.conv2 '
        '(default: the last dynamic layer of every stage)')
    parser.add_argument(
        '--method', default='GradCAM', choices=METHODS,
        help='CAM method of the grad-cam package')
    parser.add_argument(
        '--target-category', type=int,
        help='class whose score is explained (default: the predicted one)')
    parser.add_argument(
        '--size', type=int, default=96,
        help='side in pixels of each cell of the grid')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config')
    args = parser.parse_args()
    if args.size < 8:
        parser.error(f'--size must be >= 8, got {args.size}')
    return args


class Logits(nn.Module):
    """The classifier as grad-cam calls it: images (B, 3, H, W) -> logits
    (B, num_classes)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.model(inputs, mode='tensor')


def wrapped_backbone(model: nn.Module) -> nn.Module:
    backbone = model.backbone
    return backbone.backbone if isinstance(backbone, KRBackbone) else backbone


def default_target_layers(model: nn.Module) -> list:
    """The last dynamic layer of every stage of the KR backbone."""
    backbone = model.backbone
    if not isinstance(backbone, KRBackbone):
        raise ValueError(f'{type(backbone).__name__} is no KRBackbone: name '
                         'the target layers with --target-layers')
    last = {
        stage_of(backbone.backbone, name): name
        for name in backbone.dynamic_names
    }
    return list(last.values())


def find_layer(model: nn.Module, name: str) -> nn.Module:
    root = wrapped_backbone(model)
    try:
        return root.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in root.named_modules() if n]
        raise ValueError(
            f'no layer {name!r} in {type(root).__name__}; its layers are '
            f'named like {names[:3]} ... {names[-3:]} ({len(names)} in all)'
        ) from None


def tokens_to_map(extra_tokens: int):
    """grad-cam's reshape_transform: (B, C, H, W) as it is; ViT tokens
    (B, extra + H*W, C) without the extra tokens as (B, C, H, W)."""

    def transform(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.dim() == 4:
            return tensor
        tokens = tensor[:, extra_tokens:]
        side = math.isqrt(tokens.size(1))
        if tensor.dim() != 3 or side * side != tokens.size(1):
            raise ValueError(f'cannot lay out an output of shape '
                             f'{tuple(tensor.shape)} as a square map')
        return tokens.transpose(1, 2).reshape(tokens.size(0), -1, side,
                                              side)

    return transform


def class_activation_maps(model: nn.Module, layers: list,
                          inputs: torch.Tensor, categories: list,
                          method: str = 'GradCAM') -> list:
    """One CAM (B, H, W) in [0, 1] per layer of ``layers``: image i's of
    class ``categories[i]``, by ``method`` of the grad-cam package, at the
    size of ``inputs`` (B, 3, H, W)."""
    targets = [ClassifierOutputTarget(c) for c in categories]
    transform = tokens_to_map(
        getattr(wrapped_backbone(model), 'num_extra_tokens', 0))
    cam_method = getattr(pytorch_grad_cam, method)
    # one CAM per layer: grad-cam averages the maps of several layers
    cams = []
    for layer in layers:
        with cam_method(model=Logits(model), target_layers=[layer],
                        reshape_transform=transform) as cam:
            cams.append(cam(inputs, targets=targets))
    return cams


def load_images(cfg: Config, model: nn.Module, paths: list) -> tuple:
    """The model's inputs (B, 3, H, W) through the test pipeline, and the
    images as that pipeline gives them, before normalisation, as RGB uint8
    (B, H, W, 3)."""
    pipeline = Compose(
        [TRANSFORMS.build(t) for t in cfg.test_dataloader.dataset.pipeline])
    samples = [pipeline(dict(img_path=path)) for path in paths]
    # mmcv loads images as BGR
    shown = np.stack([
        s['inputs'].numpy().transpose(1, 2, 0)[..., ::-1] for s in samples
    ])
    data = model.data_preprocessor(default_collate(samples), False)
    return data['inputs'], shown


def resize(array: np.ndarray, size: int, resample) -> np.ndarray:
    image = Image.fromarray(array)
    return np.asarray(image.resize((size, size), resample))


def main():
    args = parse_args()
    for path in [args.checkpoint, *args.images]:
        if not osp.isfile(path):
            raise FileNotFoundError(f'file not found: {path}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = get_model(cfg, pretrained=args.checkpoint,
                      device=args.device).eval()
    names = args.target_layers or default_target_layers(model)
    layers = [find_layer(model, name) for name in names]

    inputs, shown = load_images(cfg, model, args.images)
    with torch.no_grad():
        probs = model(inputs, mode='tensor').softmax(dim=1)
    predicted = probs.argmax(dim=1).tolist()
    category = ([args.target_category] * len(predicted)
                if args.target_category is not None else predicted)
    cams = class_activation_maps(model, layers, inputs, category,
                                 args.method)

    # get_model keeps the checkpoint's (or the dataset's) class names here
    classes = getattr(model, '_dataset_meta', {}).get('classes')
    columns = []
    for i, path in enumerate(args.images):
        image = resize(shown[i], args.size, Image.NEAREST)
        cells = [image]
        for layer_cams in cams:
            heat = resize(layer_cams[i].astype(np.float32), args.size,
                          Image.BILINEAR)
            cells.append(
                show_cam_on_image(image / 255., heat.clip(0, 1),
                                  use_rgb=True))
        columns.append(np.concatenate(cells, axis=0))
        label = classes[predicted[i]] if classes else predicted[i]
        print(f'{path}: predicted {label} ({probs[i, predicted[i]]:.2f}), '
              f'CAM of class {category[i]}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    Image.fromarray(np.concatenate(columns, axis=1)).save(args.out)
    print(f'rows: input, {", ".join(names)}\nwrote {args.out}')


if __name__ == '__main__':
    main()
