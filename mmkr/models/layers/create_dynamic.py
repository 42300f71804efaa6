"""Factory: the dynamic counterpart of a static layer."""
import torch.nn as nn
from mmcv.cnn.bricks import wrappers

from .dynamic_conv import DynamicConv2d
from .dynamic_layer import DynamicLayer
from .dynamic_linear import DynamicLinear

# mmcv's wrappers (used by mmcv's FFN in every mmpretrain transformer) differ
# from torch's layers only for empty inputs on torch < 1.6.
STATIC_TO_DYNAMIC = {
    nn.Conv2d: DynamicConv2d,
    nn.Linear: DynamicLinear,
    wrappers.Conv2d: DynamicConv2d,
    wrappers.Linear: DynamicLinear,
}


def is_convertible(module: nn.Module) -> bool:
    """True for the static layers that have a dynamic counterpart (exact
    types: other subclasses may change the math)."""
    return type(module) in STATIC_TO_DYNAMIC


def create_dynamic(module: nn.Module, **kwargs) -> DynamicLayer:
    """Build the dynamic layer with ``module``'s shape; ``kwargs`` are the
    options of :class:`DynamicLayer` and ``kernel_num``."""
    if not is_convertible(module):
        raise TypeError(f'no dynamic counterpart for {type(module).__name__}'
                        f'; convertible: '
                        f'{[t.__name__ for t in STATIC_TO_DYNAMIC]}')
    return STATIC_TO_DYNAMIC[type(module)].from_static(module, **kwargs)
