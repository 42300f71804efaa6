from .kr_backbone import KRBackbone, execution_order

__all__ = ['KRBackbone', 'execution_order']
