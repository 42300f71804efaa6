from .kr_backbone import KRBackbone
from .probe import execution_order, probe_layers, recomputed_layers

__all__ = [
    'KRBackbone', 'execution_order', 'probe_layers', 'recomputed_layers'
]
