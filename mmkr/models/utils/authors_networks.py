"""The networks of ODConv's and DCD's authors, as module maps onto mmkr.

Each function names the modules of one authors' network (from their model
code) and the mmkr module each became: mmpretrain's ResNet keeps
torchvision's names, so a ResNet maps name for name; mmpretrain's
MobileNetV2 numbers its blocks per stage (``layer{stage}.{block}``) where the
authors number them in one ``features`` sequence, so its map walks the
stage table both use.
"""
from typing import Dict, List, Optional, Tuple

import torch

from .authors_checkpoints import (DETECTORS, AuthorsNetwork, ModuleMap,
                                  stage_blocks)

ODCONV_PAGE = 'https://github.com/OSVAI/ODConv'
DCD_PAGE = 'https://github.com/liyunsheng13/dcd'

BACKBONE = 'backbone.backbone'
# depth -> (blocks per stage, bottleneck blocks)
RESNET_STAGES = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
}
# MobileNetV2's stages (t: expansion, c: width, n: blocks, s: stride), as
# both the authors and mmpretrain build them
MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
                      (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1,
                                                                     1))
# width multiplier -> (stem width: 32 channels at 1.0x, rounded to 8; the
# width's part of mmkr's config names)
MOBILENETV2_WIDTHS = {0.5: (16, '-050'), 0.75: (24, '-075'), 1.0: (32, '')}


def resnet_modules(depth: int, conv_kind: str) -> List[ModuleMap]:
    """ResNet's stem, blocks and downsample shortcuts: same names in the
    authors' network and mmpretrain's; the block convs are ``conv_kind``,
    the rest static. The first block of a stage has a shortcut where it
    changes the shape (stride 2, or a bottleneck's 4x width)."""
    blocks, bottleneck = RESNET_STAGES[depth]
    modules = [
        ModuleMap('conv1', f'{BACKBONE}.conv1'),
        ModuleMap('bn1', f'{BACKBONE}.bn1')
    ]
    convs = (1, 2, 3) if bottleneck else (1, 2)
    for stage, count in enumerate(blocks, 1):
        for index in range(count):
            block = f'layer{stage}.{index}'
            for conv in convs:
                modules += [
                    ModuleMap(f'{block}.conv{conv}',
                              f'{BACKBONE}.{block}.conv{conv}', conv_kind),
                    ModuleMap(f'{block}.bn{conv}',
                              f'{BACKBONE}.{block}.bn{conv}')
                ]
            if index == 0 and (stage > 1 or bottleneck):
                modules += [
                    ModuleMap(f'{block}.downsample.{i}',
                              f'{BACKBONE}.{block}.downsample.{i}')
                    for i in (0, 1)
                ]
    return modules


def mobilenetv2_modules(block_convs: Dict[bool, Tuple[Tuple[str, str, str],
                                                      ...]],
                        stem: Tuple[str, str]) -> List[ModuleMap]:
    """MobileNetV2's stem and inverted residuals. Block ``features.{i}``
    (i from 1, in stage order) is mmpretrain's ``layer{stage}.{block}``;
    ``block_convs[expands]`` lists, for each of mmpretrain's
    ``conv.{k}`` (ConvModule: ``.conv``, ``.bn``), the authors' conv, their
    norm and the conv's kind, for blocks with (True) and without (False) an
    expansion."""
    modules = [
        ModuleMap(stem[0], f'{BACKBONE}.conv1.conv'),
        ModuleMap(stem[1], f'{BACKBONE}.conv1.bn')
    ]
    feature = 1
    for stage, (expansion, _, count, _) in enumerate(MOBILENETV2_STAGES, 1):
        for index in range(count):
            ours = f'{BACKBONE}.layer{stage}.{index}.conv'
            theirs = f'features.{feature}.conv'
            for k, (conv, norm,
                    kind) in enumerate(block_convs[expansion != 1]):
                modules += [
                    ModuleMap(f'{theirs}.{conv}', f'{ours}.{k}.conv', kind),
                    ModuleMap(f'{theirs}.{norm}', f'{ours}.{k}.bn')
                ]
            feature += 1
    return modules


def odconv_resnet(depth: int, kernel_num: int) -> AuthorsNetwork:
    """OSVAI/ODConv models/od_resnet.py, ``od_resnet{depth}(kernel_num=K)``:
    every block conv an ``ODConv2d``, the stem and the shortcuts static,
    the classifier ``fc``."""
    return AuthorsNetwork(
        f'ODConv ResNet-{depth} ({kernel_num}x, K={kernel_num})',
        f'configs/odconv/resnet{depth}_odconv{kernel_num}.py',
        tuple(resnet_modules(depth, 'odconv') + [ModuleMap('fc', 'head.fc')]))


def odconv_mobilenetv2(width: float, kernel_num: int) -> AuthorsNetwork:
    """OSVAI/ODConv models/od_mobilenetv2.py, ``od_mobilenetv2_{050,075,100}
    (kernel_num=K)``: every conv after the stem an ``ODConv2d``
    (``ODConvBNReLU`` is conv ``.0``, norm ``.1``), the last 1x1 conv
    ``features.18``, the classifier ``classifier.1`` behind dropout."""
    convs = {
        True: (('0.0', '0.1', 'odconv'), ('1.0', '1.1', 'odconv'), ('2', '3',
                                                                    'odconv')),
        False: (('0.0', '0.1', 'odconv'), ('1', '2', 'odconv')),
    }
    last = 1 + sum(stage[2] for stage in MOBILENETV2_STAGES)
    return AuthorsNetwork(
        f'ODConv MobileNetV2 {width}x ({kernel_num}x, K={kernel_num})',
        f'configs/odconv/mobilenet-v2{MOBILENETV2_WIDTHS[width][1]}_odconv'
        f'{kernel_num}.py',
        tuple(
            mobilenetv2_modules(convs, ('features.0.0', 'features.0.1')) + [
                ModuleMap(f'features.{last}.0', f'{BACKBONE}.conv2.conv',
                          'odconv'),
                ModuleMap(f'features.{last}.1', f'{BACKBONE}.conv2.bn'),
                ModuleMap('classifier.1', 'head.fc')
            ]))


def dcd_resnet(depth: int, dropout: bool = True) -> AuthorsNetwork:
    """liyunsheng13/dcd models/imagenet/resnet_dcd.py, ``resnet{depth}_dcd``:
    every block conv dynamic (``conv_basic_dy`` / ``conv_dy``), the stem and
    the shortcuts static; ``DYCls`` is ``classifier.1`` behind the
    authors' ``--dropout``, else ``classifier.0``."""
    return AuthorsNetwork(
        f'DCD ResNet-{depth}', f'configs/dcd/resnet{depth}_dcd.py',
        tuple(
            resnet_modules(depth, 'dcd_resnet') + [
                ModuleMap(f'classifier.{int(dropout)}', 'head',
                          'dcd_classifier')
            ]))


def dcd_mobilenetv2(width: float, dropout: bool = True) -> AuthorsNetwork:
    """liyunsheng13/dcd models/imagenet/mobilenetv2_dcd.py,
    ``mobilenetv2_dcd(width_mult)``: both 1x1 convs of each block with an
    expansion a ``DYModule``, the depthwise convs, the first block, the stem
    and the last 1x1 conv (``conv``) static; ``DYCls`` as in
    :func:`dcd_resnet`."""
    convs = {
        True: (('0', '1', 'dcd_mobilenetv2'), ('3', '4', 'static'),
               ('6', '7', 'dcd_mobilenetv2')),
        False: (('0', '1', 'static'), ('3', '4', 'static')),
    }
    return AuthorsNetwork(
        f'DCD MobileNetV2 {width}x',
        f'configs/dcd/mobilenet-v2{MOBILENETV2_WIDTHS[width][1]}_dcd.py',
        tuple(
            mobilenetv2_modules(convs, ('features.0.0', 'features.0.1')) + [
                ModuleMap('conv.0', f'{BACKBONE}.conv2.conv'),
                ModuleMap('conv.1', f'{BACKBONE}.conv2.bn'),
                ModuleMap(f'classifier.{int(dropout)}', 'head',
                          'dcd_classifier')
            ]))


def _resnet_depth(authors: Dict[str, torch.Tensor],
                  bottleneck_key: str) -> Optional[int]:
    shape = (stage_blocks(authors, '',
                          ('layer1', 'layer2', 'layer3', 'layer4')),
             bottleneck_key in authors)
    return next((d for d, s in RESNET_STAGES.items() if s == shape), None)


def _mobilenetv2_width(authors: Dict[str, torch.Tensor]) -> Optional[float]:
    stem = authors['features.0.0.weight'].shape[0]
    return next((w for w, (c, _) in MOBILENETV2_WIDTHS.items() if c == stem),
                None)


def odconv_network(
        authors: Dict[str, torch.Tensor]) -> Optional[AuthorsNetwork]:
    """The ODConv network whose state dict ``authors`` is, from its tensors'
    names and shapes (depth, width, K); None if it is none of them."""
    if 'layer1.0.conv1.attention.fc.weight' in authors:
        depth = _resnet_depth(authors, 'layer1.0.conv3.weight')
        return depth and odconv_resnet(
            depth, authors['layer1.0.conv1.weight'].shape[0])
    if ('features.1.conv.0.0.attention.fc.weight' in authors
            and 'features.0.0.weight' in authors):
        width = _mobilenetv2_width(authors)
        return width and odconv_mobilenetv2(
            width, authors['features.1.conv.0.0.weight'].shape[0])
    return None


def dcd_network(authors: Dict[str, torch.Tensor]) -> Optional[AuthorsNetwork]:
    """The DCD network whose state dict ``authors`` is; None if none."""
    dropout = 'classifier.1.cls.weight' in authors
    if 'layer1.0.conv1.fc_phi.weight' in authors:
        depth = _resnet_depth(authors, 'layer1.0.conv3.conv.weight')
        return depth and dcd_resnet(depth, dropout)
    if ('features.2.conv.0.fc_phi.weight' in authors
            and 'features.0.0.weight' in authors):
        width = _mobilenetv2_width(authors)
        return width and dcd_mobilenetv2(width, dropout)
    return None


DETECTORS.extend([odconv_network, dcd_network])
