"""Every backbone of mmpretrain's registry under KRBackbone, at its smallest
arch: it builds without a probe size, trains a step with a gradient for
every KR parameter, d reaches every dynamic layer, and no sample's outputs
depend on the others of its batch (eval mode, float64). A backbone of a
newer mmpretrain shows up here as a failure or as an exclusion with its
reason (mmkr.testing.backbones). The sweep takes minutes per backbone on 2
CPU cores: it is marked slow, `pytest -m slow tests/test_backbone_registry.py`
runs it (tools/analysis_tools/backbone_table.py runs the same checks)."""
import pytest
from mmpretrain.registry import MODELS

from mmkr.testing.backbones import (CASES, EXCLUDED, Case, check_backbone,
                                    registry_backbones)

BACKBONES = registry_backbones()


@pytest.mark.slow
@pytest.mark.parametrize('name', BACKBONES)
def test_backbone_under_kr(name):
    if name in EXCLUDED:
        pytest.skip(EXCLUDED[name])
    summary = check_backbone(name)
    assert summary['dynamic'] > 0


def test_cases_name_registered_backbones():
    assert sorted((set(CASES) | set(EXCLUDED)) - set(BACKBONES)) == []
    assert 'ConvNeXt' in BACKBONES and MODELS.get('ConvNeXt') is not None


@pytest.mark.parametrize(
    'timm_options',
    [
        dict(model_name='resnet18'),
        # timm's smallest ConvNeXts run their MLPs as 1x1 convs by default
        dict(model_name='convnext_atto', conv_mlp=False),
    ],
    ids=['resnet18', 'convnext_atto'])
def test_timm_backbones_under_kr(timm_options):
    """timm's ResNet (convs; its blocks end in a zero-initialised norm) and
    ConvNeXt (linears on channels-last maps) inside mmpretrain's
    TIMMBackbone, at 32x32: a few seconds each, so they run in CI."""
    summary = check_backbone('TIMMBackbone',
                             Case(dict(pretrained=False, **timm_options)))
    assert summary['dynamic'] > 0 and not summary['kept_static']
