from mmengine.registry import MODELS as MMENGINE_MODELS
from mmpretrain.registry import MODELS

from .backbones import KRBackbone
from .heads import KRLinearClsHead
from .layers import DCDConv2d, DynamicConv2d, DynamicLinear, WeightNetConv2d

# In both registries, so that mmcv's ``build_conv_layer`` (mmengine's
# registry) and mmpretrain configs (its own) can name the dynamic layers.
for _registry in (MODELS, MMENGINE_MODELS):
    for _layer in (DynamicConv2d, DynamicLinear, DCDConv2d, WeightNetConv2d):
        _registry.register_module(module=_layer)

__all__ = [
    'KRBackbone', 'KRLinearClsHead', 'DynamicConv2d', 'DynamicLinear',
    'DCDConv2d', 'WeightNetConv2d'
]
