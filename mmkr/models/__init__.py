from mmengine.registry import MODELS as MMENGINE_MODELS
from mmpretrain.registry import MODELS

from .backbones import KRBackbone
from .heads import KRLinearClsHead
from .layers import DynamicConv2d, DynamicLinear

# In both registries, so that mmcv's ``build_conv_layer`` (mmengine's
# registry) and mmpretrain configs (its own) can name the dynamic layers.
for _registry in (MODELS, MMENGINE_MODELS):
    _registry.register_module(module=DynamicConv2d)
    _registry.register_module(module=DynamicLinear)

__all__ = ['KRBackbone', 'KRLinearClsHead', 'DynamicConv2d', 'DynamicLinear']
