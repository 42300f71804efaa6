"""Factory: the dynamic counterpart of a static layer, for each method."""
import torch.nn as nn
from mmcv.cnn.bricks import wrappers

from .dynamic_layer import DynamicLayer
from .registry import get_method

# mmcv's wrappers (used by mmcv's FFN in every mmpretrain transformer) differ
# from torch's layers only for empty inputs on torch < 1.6.
STATIC_TYPES = {
    nn.Conv2d: nn.Conv2d,
    nn.Linear: nn.Linear,
    wrappers.Conv2d: nn.Conv2d,
    wrappers.Linear: nn.Linear,
}


def is_convertible(module: nn.Module) -> bool:
    """True for the static layers that have a dynamic counterpart (exact
    types: other subclasses may change the math)."""
    return type(module) in STATIC_TYPES


def create_dynamic(module: nn.Module, method: str = 'odconv',
                   **kwargs) -> DynamicLayer:
    """Build the ``method`` layer with ``module``'s shape; ``kwargs`` are the
    options of that layer (e.g. ``kernel_num``, ``kr_dims``)."""
    spec = get_method(method)
    if not is_convertible(module):
        raise TypeError(f'no dynamic counterpart for {type(module).__name__}'
                        f'; convertible: '
                        f'{[t.__name__ for t in STATIC_TYPES]}')
    static_type = STATIC_TYPES[type(module)]
    if static_type not in spec.layers:
        raise TypeError(
            f'{method} has no dynamic {static_type.__name__}; it replaces '
            f'{[t.__name__ for t in spec.layers]} only: keep the others '
            'static (static_layers)')
    return spec.layers[static_type].from_static(module, **spec.layer_kwargs,
                                                **kwargs)
