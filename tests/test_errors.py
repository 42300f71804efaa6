"""Mistakes a new user makes in a KRBackbone config are refused with an
error that names the mistake."""
import pytest
import torch
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401


def build(**kwargs):
    cfg = dict(type='KRBackbone',
               backbone=dict(type='ResNet', depth=18, base_channels=8),
               kernel_num=4, kr_dims=4)
    return MODELS.build({**cfg, **kwargs})


def test_static_layers_pattern_that_matches_nothing():
    """A typo would otherwise leave the stem dynamic without a word."""
    with pytest.raises(ValueError) as error:
        build(static_layers=['conv1', 'stemm.*'])
    message = str(error.value)
    assert "'stemm.*' matches no layer" in message
    assert "'conv1'" in message and "'layer1.0.conv1'" in message
    assert build(static_layers=['conv1', 'layer1']).dynamic_names[0] == \
        'layer2.0.conv1'


@pytest.mark.parametrize('kr_dims', [-3, 0])
def test_kr_dims_below_one_with_kr_on(kr_dims):
    with pytest.raises(ValueError, match=f'kr_dims must be >= 1 with KR on, '
                       f'got kr_dims={kr_dims}'):
        build(kr_dims=kr_dims)
    # KR off: kr_dims plays no part
    assert build(kr_dims=kr_dims, with_kr=False).kr_dims == 0


def test_bn_attention_norm_needs_batches_of_two_in_training():
    """BatchNorm in F cannot normalise one sample: say so, and that the
    'ln' norm can. (64 x 64 images: the ResNet's own BatchNorms need more
    than one value per channel, which its 1 x 1 last stage at 32 x 32 would
    not give them.)"""
    image = torch.randn(1, 3, 64, 64)
    model = build(attention_norm='bn').train()
    with pytest.raises((ValueError, RuntimeError)) as error:
        model(image)
    message = str(error.value)
    assert "'bn'" in message and 'batch' in message and "'ln'" in message
    build(attention_norm='ln').train()(image)
