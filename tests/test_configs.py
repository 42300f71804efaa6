"""Every config in configs/ builds, classifies one and two images at its
resolution, and (dynamic configs) makes exactly the intended layers dynamic."""
import glob
import os.path as osp
import re

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain import get_model
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401
from mmkr.models.backbones import KRBackbone
from mmkr.models.layers import DynamicLayer, is_convertible

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
}
EXPECTED_COUNT = {
    'ResNet': 19,
    'MobileNetV2': 51,
    'VisionTransformer': 48,
    'PoolFormer': 27
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


def intended_dynamic(backbone_cfg: dict):
    """Names of the static backbone's layers that the family's pattern
    selects, checked to be convertible layers."""
    static = MODELS.build(backbone_cfg)
    pattern = re.compile(INTENDED_DYNAMIC[backbone_cfg['type']] + '$')
    names = {
        name
        for name, module in static.named_modules() if pattern.match(name)
    }
    assert all(is_convertible(static.get_submodule(n)) for n in names)
    return names


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_and_classifies(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    model = get_model(cfg, device='cpu').eval()
    side = resolution(cfg)
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
    family = cfg.model.backbone.backbone.type
    expected = intended_dynamic(cfg.model.backbone.backbone)
    assert len(expected) == EXPECTED_COUNT[family]
    assert set(model.backbone.dynamic_names) == expected
    dynamic_modules = {
        name
        for name, m in model.backbone.backbone.named_modules()
        if isinstance(m, DynamicLayer)
    }
    assert dynamic_modules == expected
    first = model.backbone.backbone.get_submodule(
        model.backbone.static_layers[0])
    assert isinstance(first, nn.Conv2d) and not isinstance(
        first, DynamicLayer)
    backbone = cfg.model.backbone
    for layer in model.backbone.dynamic_layers.values():
        assert layer.kernel_num == backbone.get('kernel_num', 1)
        assert layer.kr_dims == (
            backbone.get('kr_dims', 64) if backbone.get('with_kr', True)
            else 0)
        assert layer.generator.variant == backbone.get('attention', 'odconv')
