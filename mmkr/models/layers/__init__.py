from .create_dynamic import METHODS, create_dynamic, is_convertible
from .dcd import DCD_LAYOUTS, DCDConv2d, DCDGenerator, dcd_sizes
from .dynamic_conv import CONV_PATHS, DynamicConv2d, select_conv_path
from .dynamic_layer import DynamicLayer, KRChain, MixingLayer, check_method
from .dynamic_linear import DynamicLinear
from .kernel_generator import (MIXING_METHODS, KernelAttention,
                               KernelGenerator, mixing_attention)
from .representation import (ConcatFusion, KRGenerator, RepresentationFusion,
                             SpectralKREncoder, SqueezeExciteFusion,
                             attention_hidden_dims, low_frequency_spectrum)
from .weightnet import GroupedLinear, WeightNetConv2d, WeightNetGenerator

__all__ = [
    'METHODS', 'create_dynamic', 'is_convertible', 'DCD_LAYOUTS',
    'DCDConv2d', 'DCDGenerator', 'dcd_sizes', 'CONV_PATHS', 'DynamicConv2d',
    'select_conv_path', 'KRChain', 'DynamicLayer', 'MixingLayer',
    'check_method',
    'DynamicLinear', 'MIXING_METHODS', 'KernelAttention', 'KernelGenerator',
    'mixing_attention', 'ConcatFusion', 'KRGenerator', 'RepresentationFusion',
    'SpectralKREncoder', 'SqueezeExciteFusion', 'attention_hidden_dims',
    'low_frequency_spectrum', 'GroupedLinear', 'WeightNetConv2d',
    'WeightNetGenerator'
]
