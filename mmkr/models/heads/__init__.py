from .kr_linear_head import KRLinearClsHead

__all__ = ['KRLinearClsHead']
