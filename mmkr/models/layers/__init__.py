# Each method module registers its method on import (registry.py).
from .create_dynamic import create_dynamic, is_convertible
from .dcd import DCD_LAYOUTS, DCDConv2d, DCDGenerator, dcd_sizes
from .dynamic_conv import CONV_PATHS, DynamicConv2d, select_conv_path
from .dynamic_conv_base import DynamicConvBase
from .dynamic_layer import DynamicLayer, KRChain, MixingLayer
from .dynamic_linear import DynamicLinear
from .kernel_warehouse import (KWConv2d, KWGenerator, WarehouseManager,
                               warehouse_names)
from .kernel_generator import (MIXING_METHODS, KernelAttention,
                               KernelGenerator, mixing_attention)
from .registry import (METHODS, DynamicMethod, TemperatureSchedule,
                       get_method, method_names, register_method)
from .representation import (ConcatFusion, KRGenerator, RepresentationFusion,
                             SpectralKREncoder, SqueezeExciteFusion,
                             attention_hidden_dims, low_frequency_spectrum)
from .weightnet import GroupedLinear, WeightNetConv2d, WeightNetGenerator

__all__ = [
    'METHODS', 'DynamicMethod', 'TemperatureSchedule', 'get_method',
    'method_names', 'register_method', 'create_dynamic', 'is_convertible', 'DCD_LAYOUTS',
    'DCDConv2d', 'DCDGenerator', 'dcd_sizes', 'CONV_PATHS', 'DynamicConv2d',
    'DynamicConvBase', 'select_conv_path', 'KRChain', 'DynamicLayer',
    'MixingLayer', 'DynamicLinear', 'MIXING_METHODS', 'KernelAttention',
    'KernelGenerator', 'mixing_attention', 'ConcatFusion', 'KRGenerator',
    'RepresentationFusion', 'SpectralKREncoder', 'SqueezeExciteFusion',
    'attention_hidden_dims', 'low_frequency_spectrum', 'GroupedLinear',
    'WeightNetConv2d', 'WeightNetGenerator', 'KWConv2d', 'KWGenerator',
    'WarehouseManager', 'warehouse_names'
]
