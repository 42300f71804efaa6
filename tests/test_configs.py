"""Every config in configs/ builds, classifies one and two images at its
resolution, and (dynamic configs) makes exactly the intended layers dynamic."""
import glob
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain import get_model
from mmpretrain.registry import MODELS
from test_head_and_hook import RandomImages

import mmkr  # noqa: F401
from mmkr.models.backbones import KRBackbone
from mmkr.models.layers import METHODS, DynamicLayer, is_convertible

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The classification configs; detection and segmentation ones
# (configs/downstream) are tests/test_downstream.py's.
CONFIGS = sorted(
    osp.relpath(path, REPO)
    for path in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                          recursive=True)
    if not {'_base_', 'downstream'} & set(path.split(osp.sep)))

# The intended dynamic layers of each backbone family, written as patterns
# over the static backbone's module names (independent of the wrapper's
# "every layer but the first" rule).
INTENDED_DYNAMIC = {
    # every conv of the blocks and the downsample shortcuts; stem static
    'ResNet': r'layer\d\.\d+\.(conv\d|downsample\.0)',
    # every conv of the inverted residuals, depthwise included, and the last
    # 1x1 conv; stem static
    'MobileNetV2': r'(layer\d\.\d+\.conv\.\d\.conv|conv2\.conv)',
    # qkv, projection and both FFN linears; patch embedding static
    'VisionTransformer': r'layers\.\d+\.(attn\.(qkv|proj)|ffn\.layers\.0\.0'
                         r'|ffn\.layers\.1)',
    # channel-MLP 1x1 convs and the downsampling embeddings after the first
    'PoolFormer': r'network\.(\d\.\d+\.mlp\.fc[12]|[135]\.proj)',
    # the blocks' convs (pointwise as 1x1 convs) and the downsampling convs
    # after the stem
    'ConvNeXt': r'(downsample_layers\.[123]\.1|stages\.\d\.\d+\.'
                r'(depthwise_conv|pointwise_conv[12]))',
    # window attention's qkv and projection, both FFN linears and the
    # patch-merging reductions; patch embedding static
    'SwinTransformer': r'stages\.\d\.(blocks\.\d+\.(attn\.w_msa\.(qkv|proj)'
                       r'|ffn\.layers\.(0\.0|1))|downsample\.reduction)',
}
EXPECTED_COUNT = {
    'ResNet': {18: 19, 50: 52, 101: 103},
    'MobileNetV2': 51,
    'VisionTransformer': 48,
    'PoolFormer': 27,
    'ConvNeXt': 57,
    'SwinTransformer': 51,
}

# Layers the comparison methods' authors keep static in their own networks
# (ODConv's od_resnet, DCD's resnet_dcd / mobilenetv2_dcd, WeightNet's
# first and last convs), with the number of dynamic layers left. KR layers
# on ODConv make every layer dynamic (the poster); KR on another method
# keeps that method's network.
AUTHORS_STATIC = {
    ('ResNet', 'odconv'): (r'layer\d\.0\.downsample\.0', {
        18: 16,
        50: 48,
        101: 99
    }),
    ('ResNet', 'condconv'): (r'layer\d\.0\.downsample\.0', 16),
    ('ResNet', 'dcd'): (r'layer\d\.0\.downsample\.0', {
        18: 16,
        50: 48
    }),
    ('ResNet', 'weightnet'): (r'layer\d\.0\.downsample\.0', 16),
    ('MobileNetV2', 'dcd'):
    (r'(layer1\.0\..*|layer\d\.\d+\.conv\.1\.conv|conv2\.conv)', 32),
    ('MobileNetV2', 'weightnet'): (r'conv2\.conv', 50),
    # kw_resnet.py's Bottleneck: the first block's 1x1 conv and its stride-1
    # downsample conv (stage -1)
    ('ResNet', 'kernelwarehouse'): ({
        18: '(?!)',
        50: r'layer1\.0\.(conv1|downsample\.0)'
    }, {
        18: 19,
        50: 50
    }),
}
# Stems the comparison methods' authors make dynamic (KernelWarehouse's
# kw_mobilenetv2.py and kw_convnext.py).
AUTHORS_DYNAMIC_STEM = {
    ('MobileNetV2', 'kernelwarehouse'): 'conv1.conv',
    ('ConvNeXt', 'kernelwarehouse'): 'downsample_layers.0.0',
}


def test_every_poster_family_has_configs():
    names = {osp.basename(path) for path in CONFIGS}
    for family in ('resnet18', 'resnet18-slim', 'mobilenet-v2-050',
                   'vit-nano', 'vit-tiny', 'poolformer-s12'):
        assert {f'{family}_kr1.py', f'{family}_kr4.py',
                f'{family}_odconv1.py', f'{family}_odconv4.py',
                f'{family}.py'} <= names, family
    for family in ('resnet18', 'mobilenet-v2-050'):
        assert {f'{family}_dyconv4.py', f'{family}_condconv8.py'} <= names


def resolution(cfg: Config) -> int:
    """The image side the config evaluates at: its test pipeline's crop,
    else (images used as stored) the backbone's probe size."""
    for step in cfg.test_dataloader.dataset.get('pipeline', []):
        if step['type'] == 'CenterCrop':
            return step['crop_size']
    return cfg.model.backbone.get('probe_size', (224, ))[0]


def intended_dynamic(backbone_cfg: dict, excluded: str = '(?!)'):
    """Names of the static backbone's layers that the family's pattern
    selects and ``excluded`` does not, checked to be convertible layers."""
    static = MODELS.build(backbone_cfg)
    pattern = re.compile(INTENDED_DYNAMIC[backbone_cfg['type']] + '$')
    excluded = re.compile(excluded + '$')
    names = {
        name
        for name, module in static.named_modules()
        if pattern.match(name) and not excluded.match(name)
    }
    assert all(is_convertible(static.get_submodule(n)) for n in names)
    return names


def calibrate_batch_norms(model: nn.Module, side: int):
    """BatchNorm statistics of one training batch, then eval mode. A fresh
    model's statistics (mean 0, variance 1) are no state a trained model is
    in, and DCD's latent path grows without bound through them."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = None
    model.train()
    # 4 images at ImageNet sizes; at the digits' 32x32 the last stage's maps
    # are 1x1, and 4 values per channel are too few for those statistics
    batch = 32 if side <= 32 else 4
    with torch.no_grad():
        model(torch.randn(batch, 3, side, side), mode='tensor')
    model.eval()


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_and_classifies(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    model = get_model(cfg, device='cpu')
    side = resolution(cfg)
    calibrate_batch_norms(model, side)
    num_classes = cfg.model.head.num_classes
    with torch.no_grad():
        for batch in (1, 2):
            logits = model(torch.randn(batch, 3, side, side), mode='tensor')
            assert logits.shape == (batch, num_classes)
            assert torch.isfinite(logits).all()

    assert not any(
        isinstance(m, DynamicLayer) for m in model.head.modules())
    if not isinstance(model.backbone, KRBackbone):
        assert not any(
            isinstance(m, DynamicLayer) for m in model.modules())
        return
    backbone = cfg.model.backbone
    family = backbone.backbone.type
    method = backbone.get('method', 'odconv')
    with_kr = backbone.get('with_kr', True)
    excluded, count = '(?!)', EXPECTED_COUNT[family]
    if (family, method) in AUTHORS_STATIC and not (method == 'odconv'
                                                   and with_kr):
        excluded, count = AUTHORS_STATIC[(family, method)]
    if isinstance(count, dict):  # by depth
        count = count[backbone.backbone.depth]
    if isinstance(excluded, dict):
        excluded = excluded[backbone.backbone.depth]
    expected = intended_dynamic(backbone.backbone, excluded)
    assert len(expected) == count
    if (family, method) in AUTHORS_DYNAMIC_STEM:
        expected.add(AUTHORS_DYNAMIC_STEM[(family, method)])
    assert set(model.backbone.dynamic_names) == expected
    dynamic_modules = {
        name
        for name, m in model.backbone.backbone.named_modules()
        if isinstance(m, DynamicLayer)
    }
    assert dynamic_modules == expected
    for name, static in model.backbone.backbone.named_modules():
        if model.backbone.is_static(name) and is_convertible(static):
            assert not isinstance(static, DynamicLayer), name
    for layer in model.backbone.dynamic_layers.values():
        assert getattr(layer, 'kernel_num', 1) == backbone.get('kernel_num', 1)
        assert layer.kr_dims == (backbone.get('kr_dims', 64) if with_kr else 0)
        assert layer.method == method


# KernelWarehouse configs that differ from one trained below only in their
# numbers of cells or the width and depth of the network.
KW_VARIANTS = ('resnet18_kw1d2x.py', 'resnet18_kw2x.py', 'resnet18_kw4x.py',
               'resnet50_kw1d2x.py', 'resnet50_kw1x.py', 'resnet50_kw4x.py',
               'mobilenet-v2-050_kw1x.py', 'mobilenet-v2_kw1x.py',
               'mobilenet-v2_kw4x.py')
# The comparison methods' configs and KR on them: each trains one step with
# its own model, optimizer and hooks in a real Runner.
METHOD_CONFIGS = sorted(
    path for path in CONFIGS
    if path.split(osp.sep)[1] in set(METHODS) - {'odconv'}
    and osp.basename(path) not in KW_VARIANTS
    or osp.basename(path) in ('resnet18_odconv4.py',
                              'mobilenet-v2-050_odconv4.py',
                              'resnet18_dcd_kr.py',
                              'resnet18_condconv8_kr.py',
                              'resnet18_kw4x_kr.py'))


def test_every_method_has_its_configs():
    names = {osp.relpath(path, 'configs') for path in METHOD_CONFIGS}
    for family in ('resnet18', 'mobilenet-v2-050'):
        assert {f'dcd/{family}_dcd.py', f'weightnet/{family}_weightnet.py',
                f'dyconv/{family}_dyconv4.py',
                f'condconv/{family}_condconv8.py'} <= names


@pytest.mark.parametrize('config', METHOD_CONFIGS)
def test_method_config_trains_one_step(config, tmp_path):
    cfg = Config.fromfile(osp.join(REPO, config))
    runner = Runner(
        model=cfg.model,
        # the dataset's, as a run of the config has it (Mixup and CutMix
        # need its num_classes)
        data_preprocessor=cfg.get('data_preprocessor'),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            # two 64x64 images: one training step
            dataset=RandomImages(2, 64), batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=cfg.optim_wrapper,
        custom_hooks=cfg.get('custom_hooks'),
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope='mmpretrain')
    before = {
        name: p.detach().clone()
        for name, p in runner.model.named_parameters()
    }
    runner.train()
    changed = [
        name for name, p in runner.model.named_parameters()
        if not torch.equal(p, before[name])
    ]
    assert all(torch.isfinite(p).all() for p in runner.model.parameters())
    # every dynamic layer's kernels and generator trained
    for name, layer in runner.model.backbone.dynamic_layers.items():
        assert any(c.startswith(f'backbone.backbone.{name}.generator.')
                   for c in changed), name
