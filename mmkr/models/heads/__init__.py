from .dcd_head import DCDClsHead
from .dropout_linear_head import DropoutLinearClsHead
from .kr_linear_head import KRLinearClsHead

__all__ = ['DCDClsHead', 'DropoutLinearClsHead', 'KRLinearClsHead']
