from .create_dynamic import create_dynamic, is_convertible
from .dynamic_conv import CONV_PATHS, DynamicConv2d, select_conv_path
from .dynamic_layer import DynamicLayer, KRChain
from .dynamic_linear import DynamicLinear
from .kernel_generator import (ATTENTION_VARIANTS, KernelAttention,
                               KernelGenerator)
from .representation import (KRGenerator, RepresentationFusion,
                             SpectralKREncoder, attention_hidden_dims,
                             low_frequency_spectrum)

__all__ = [
    'create_dynamic', 'is_convertible', 'CONV_PATHS', 'DynamicConv2d',
    'select_conv_path', 'DynamicLayer', 'KRChain', 'DynamicLinear',
    'ATTENTION_VARIANTS', 'KernelAttention', 'KernelGenerator', 'KRGenerator',
    'RepresentationFusion', 'SpectralKREncoder', 'attention_hidden_dims',
    'low_frequency_spectrum'
]
