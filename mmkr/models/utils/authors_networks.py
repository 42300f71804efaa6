"""The networks of ODConv's, DCD's and KernelWarehouse's authors, as module
maps onto mmkr.

Each function names the modules of one authors' network (from their model
code) and the mmkr module each became: mmpretrain's ResNet keeps
torchvision's names, so a ResNet maps name for name; mmpretrain's
MobileNetV2 numbers its blocks per stage (``layer{stage}.{block}``) where the
authors number them in one ``features`` sequence, so its map walks the
stage table both use; mmpretrain's ConvNeXt renames the convs of a block
(``dwconv`` -> ``depthwise_conv``, ``pwconv1`` -> ``pointwise_conv1``) and
its last norm (``norm`` -> ``norm3``).
"""
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .authors_checkpoints import (AUTHORS_WAREHOUSES, DETECTORS,
                                  AuthorsNetwork, ModuleMap, stage_blocks)

ODCONV_PAGE = 'https://github.com/OSVAI/ODConv'
DCD_PAGE = 'https://github.com/liyunsheng13/dcd'
KW_PAGE = 'https://github.com/OSVAI/KernelWarehouse'

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


def resnet_modules(
    depth: int,
    conv_kind: str,
    shortcut_kind: str = 'static',
    static: Sequence[str] = ()) -> List[ModuleMap]:
    """ResNet's stem, blocks and downsample shortcuts: same names in the
    authors' network and mmpretrain's; the block convs are ``conv_kind``,
    the shortcut convs ``shortcut_kind``, the convs named in ``static`` and
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
                    ModuleMap(f'{block}.downsample.0',
                              f'{BACKBONE}.{block}.downsample.0',
                              shortcut_kind),
                    ModuleMap(f'{block}.downsample.1',
                              f'{BACKBONE}.{block}.downsample.1')
                ]
    return [
        replace(m, kind='static') if m.authors in static else m
        for m in modules
    ]


def mobilenetv2_modules(block_convs: Dict[bool, Tuple[Tuple[str, str, str],
                                                      ...]],
                        stem: Tuple[str, str],
                        stem_kind: str = 'static') -> List[ModuleMap]:
    """MobileNetV2's stem (its conv ``stem_kind``) and inverted residuals.
    Block ``features.{i}`` (i from 1, in stage order) is mmpretrain's
    ``layer{stage}.{block}``; ``block_convs[expands]`` lists, for each of
    mmpretrain's ``conv.{k}`` (ConvModule: ``.conv``, ``.bn``), the authors'
    conv, their norm and the conv's kind, for blocks with (True) and without
    (False) an expansion."""
    modules = [
        ModuleMap(stem[0], f'{BACKBONE}.conv1.conv', stem_kind),
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


# KernelWarehouse's sizes: the name in the configs' names, the authors'
KW_SIZES = {'1d4x': '1/4x', '1d2x': '1/2x', '1x': '1x', '2x': '2x', '4x': '4x'}
# The shape (n, c_out, c_in) of the first warehouse of each released
# KernelWarehouse network (ResNet: stage 1's; MobileNetV2, ConvNeXt: the
# stem's), which tells the sizes of a network apart: the cells' channels
# (halved at 1/2x and 1/4x) and their number, cell_num_ratio times the
# cells of its layers.
KW_FIRST_WAREHOUSE = {
    'resnet18': {
        (56, 32, 32): '1d4x',
        (112, 32, 32): '1d2x',
        (56, 64, 64): '1x',
        (112, 64, 64): '2x',
        (224, 64, 64): '4x'
    },
    'resnet50': {
        (174, 32, 32): '1d2x',
        (87, 64, 64): '1x',
        (348, 64, 64): '4x'
    },
    'mobilenet-v2-050': {
        (9, 16, 3): '1x',
        (36, 16, 3): '4x'
    },
    'mobilenet-v2': {
        (9, 32, 3): '1x',
        (36, 32, 3): '4x'
    },
    'convnext-tiny': {
        (16, 96, 3): '1x'
    },
}


def _kw_network(name: str, config: str, size: str, modules: List[ModuleMap],
                warehouses: Sequence[str]) -> AuthorsNetwork:
    """The KernelWarehouse network ``name`` of mmkr's
    ``configs/kernelwarehouse/{config}_kw{size}.py``."""
    return AuthorsNetwork(f'KernelWarehouse {name} ({KW_SIZES[size]})',
                          f'configs/kernelwarehouse/{config}_kw{size}.py',
                          tuple(modules), tuple(warehouses))


def kw_resnet(depth: int, size: str) -> AuthorsNetwork:
    """OSVAI/KernelWarehouse models/kw_resnet.py, ``kw_resnet{depth}`` of
    ``configs/resnet{depth}/kw{size}_resnet{depth}.json``: every block conv
    and every stride-2 shortcut conv a ``KWConv2d``; the stem static, and
    ResNet-50's ``layer1.0.conv1`` and its stride-1 shortcut conv (stage
    -1, ``enabled=False``); the classifier ``fc`` behind dropout. One
    warehouse per stage, ``stage{s}_layer_conv``."""
    static = ('layer1.0.conv1', 'layer1.0.downsample.0') if depth == 50 else ()
    return _kw_network(
        f'ResNet-{depth}', f'resnet{depth}', size,
        resnet_modules(depth, 'kw', 'kw', static) +
        [ModuleMap('fc', 'head.fc')],
        [f'layer{stage}:conv' for stage in (1, 2, 3, 4)])


def kw_mobilenetv2(width: float, size: str) -> AuthorsNetwork:
    """OSVAI/KernelWarehouse models/kw_mobilenetv2.py,
    ``kw_mobilenetv2_{050,100}`` of ``configs/mobilenetv2_*/kw{size}_*.json``:
    every conv a ``KWConv2d``, the stem (``features.0``) and the last 1x1
    conv (``features.18``) included; the classifier ``classifier``.

    Warehouses, in the authors' order: the stem's, then per stage (the
    first block of stages 2 .. 6 joins the stage before, the last stage
    joins stage 6) its depthwise convs' and its 1x1 convs' at 1x
    (``sharing_range=('layer', 'pwconv')``), or its projection convs'
    (``pwconv1``), its depthwise convs' and its expansion convs'
    (``pwconv0``) at 4x (``('layer',)``), in the order the stage's first
    block reserves them.
    """
    convs = {
        True: (('0.0', '0.1', 'kw'), ('1.0', '1.1', 'kw'), ('2', '3', 'kw')),
        False: (('0.0', '0.1', 'kw'), ('1', '2', 'kw')),
    }
    last = 1 + sum(stage[2] for stage in MOBILENETV2_STAGES)
    # mmkr counts a block's 1x1 convs from its last: pwconv0 projects
    if size == '1x':
        stages = [('dwconv0', 'pwconv')] + [('pwconv', 'dwconv0')] * 5
    else:
        stages = [('dwconv0', 'pwconv0', 'pwconv1')
                  ] + [('pwconv1', 'dwconv0', 'pwconv0')] * 5
    return _kw_network(
        f'MobileNetV2 {width}x', f'mobilenet-v2{MOBILENETV2_WIDTHS[width][1]}',
        size,
        mobilenetv2_modules(convs, ('features.0.0', 'features.0.1'), 'kw') + [
            ModuleMap(f'features.{last}.0', f'{BACKBONE}.conv2.conv', 'kw'),
            ModuleMap(f'features.{last}.1', f'{BACKBONE}.conv2.bn'),
            ModuleMap('classifier', 'head.fc')
        ], ['conv1:conv0'] + [
            f'layer{stage}:{kind}' for stage, kinds in enumerate(stages, 1)
            for kind in kinds
        ])


# ConvNeXt-T's blocks per stage
CONVNEXT_TINY_DEPTHS = (3, 3, 9, 3)


def kw_convnext_tiny() -> AuthorsNetwork:
    """OSVAI/KernelWarehouse models/kw_convnext.py, ``kw_convnext_tiny`` of
    ``configs/convnext/kw1x_convnext_tiny.json``: every conv a
    ``KWConv2d`` with a bias, the stem (``downsample_layers.0.0``) and the
    downsample convs (``downsample_layers.{i}.1``) included; each block's
    ``gamma`` (1, C, 1, 1); the last norm ``norm``, the classifier
    ``head``.

    Warehouses, in the authors' order: the stem's and the three downsample
    convs' (created with the downsample layers), then per stage its
    depthwise convs' and its pointwise convs' (``sharing_range=('layer',
    'pwconv')``).
    """
    modules = [
        ModuleMap('downsample_layers.0.0', f'{BACKBONE}.downsample_layers.0.0',
                  'kw'),
        ModuleMap('downsample_layers.0.1', f'{BACKBONE}.downsample_layers.0.1')
    ]
    for i in (1, 2, 3):
        modules += [
            ModuleMap(f'downsample_layers.{i}.0',
                      f'{BACKBONE}.downsample_layers.{i}.0'),
            ModuleMap(f'downsample_layers.{i}.1',
                      f'{BACKBONE}.downsample_layers.{i}.1', 'kw')
        ]
    ours = dict(dwconv='depthwise_conv',
                norm='norm',
                pwconv1='pointwise_conv1',
                pwconv2='pointwise_conv2')
    for stage, depth in enumerate(CONVNEXT_TINY_DEPTHS):
        for index in range(depth):
            block = f'stages.{stage}.{index}'
            modules.append(
                ModuleMap(block, f'{BACKBONE}.{block}', 'layer_scale'))
            modules += [
                ModuleMap(f'{block}.{theirs}', f'{BACKBONE}.{block}.{name}',
                          'static' if theirs == 'norm' else 'kw')
                for theirs, name in ours.items()
            ]
    return _kw_network(
        'ConvNeXt-T', 'convnext-tiny', '1x', modules +
        [ModuleMap('norm', f'{BACKBONE}.norm3'),
         ModuleMap('head', 'head.fc')],
        [f'downsample_layers.{i}:conv0' for i in range(4)] + [
            f'stages.{stage}:{kind}' for stage in range(4)
            for kind in ('dwconv0', 'pwconv')
        ])


def _kw_size(authors: Dict[str, torch.Tensor], network: str) -> str:
    """The size of the KernelWarehouse ``network`` whose state dict
    ``authors`` is, from its first warehouse; refuses one of a size mmkr
    has no config for."""
    shape = tuple(authors[f'{AUTHORS_WAREHOUSES}.0'].shape[:3])
    sizes = KW_FIRST_WAREHOUSE[network]
    if shape not in sizes:
        raise ValueError(
            f'a KernelWarehouse {network} whose first warehouse has '
            f'{shape[0]} cells of {shape[1]}x{shape[2]} channels: none of '
            f'the sizes mmkr has configs for (' +
            ', '.join(f'{KW_SIZES[size]}: {cells}'
                      for cells, size in sizes.items()) +
            "; the authors' MobileNetV2 1/2x is not built)")
    return sizes[shape]


def kw_network(authors: Dict[str, torch.Tensor]) -> Optional[AuthorsNetwork]:
    """The KernelWarehouse network whose state dict ``authors`` is, from
    its tensors' names (depth, width) and first warehouse (size); None if
    it is none of them."""
    if f'{AUTHORS_WAREHOUSES}.0' not in authors:
        return None
    if 'layer1.0.conv2.attention.fc1.weight' in authors:
        depth = _resnet_depth(authors, 'layer1.0.conv3.attention.fc1.weight')
        return depth and kw_resnet(depth, _kw_size(authors, f'resnet{depth}'))
    if 'features.0.1.weight' in authors:
        width = next((w for w, (c, _) in MOBILENETV2_WIDTHS.items()
                      if c == authors['features.0.1.weight'].shape[0]), None)
        if width not in (0.5, 1.0):
            return None
        return kw_mobilenetv2(
            width,
            _kw_size(authors, f'mobilenet-v2{MOBILENETV2_WIDTHS[width][1]}'))
    if 'stages.2.8.dwconv.attention.fc1.weight' in authors:
        _kw_size(authors, 'convnext-tiny')
        return kw_convnext_tiny()
    return None


DETECTORS.extend([odconv_network, dcd_network, kw_network])
