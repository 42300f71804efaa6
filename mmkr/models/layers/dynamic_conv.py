"""Dynamic 2D convolution with K candidate kernels and the KR path."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from .dynamic_layer import DynamicLayer
from .kernel_generator import KernelAttention

CONV_PATHS = ('static', 'pointwise', 'grouped')


def select_conv_path(kernel_num: int, has_spatial: bool, kernel_size,
                     groups: int, padding) -> str:
    """Pick the cheapest exact way to run a dynamic conv.

    - ``'static'``: one candidate and no spatial attention. The per-sample
      kernel is the static one scaled per input and output channel, so the
      channel and filter attentions scale features around a static conv.
    - ``'pointwise'``: a 1x1 conv without groups or padding. The per-sample
      (C_out, C_in) kernels are small; one batched matmul applies them.
    - ``'grouped'``: everything else. Per-sample kernels are aggregated over
      K in one matmul and the batch is folded into the groups of a single
      conv, (1, B*C_in, H, W) * (B*C_out, C_in/g, k, k).
    """
    if kernel_num == 1 and not has_spatial:
        return 'static'
    if _pair(kernel_size) == (1, 1) and groups == 1 and _pair(padding) == (0, 0):
        return 'pointwise'
    return 'grouped'


class DynamicConv2d(DynamicLayer):
    """Y = f ⊙ conv(c ⊙ X, Σ_k a_k · (s ⊙ W_k)) + Σ_k a_k b_k, per sample.

    c, f, s and a are the channel, filter, spatial and kernel attentions of
    :class:`KernelGenerator` (ODConv's), computed from h = GAP(X) and, with KR
    on, from the incoming kernel representation d. A missing attention is 1
    (a = 1 for K = 1). With ``kr_dims=0`` this is ODConv; with
    ``attention='dyconv'`` or ``'condconv'`` it is DyConv or CondConv.

    The bias, where there is one, is mixed like the kernels and added after
    the filter attention.

    Which execution path runs is fixed at construction by
    :func:`select_conv_path` and stored in :attr:`path`.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias: as for :class:`torch.nn.Conv2d`.
        **kwargs: the KR options of :class:`DynamicLayer`.

    Shapes:
        x: (B, C_in, H, W), d: (B, D) or None
        -> y: (B, C_out, H', W'), d_{i+1}: (B, D) or None
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = False, kernel_num: int = 1, **kwargs):
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f'in_channels ({in_channels}) and out_channels '
                f'({out_channels}) must be divisible by groups ({groups})')
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        depthwise = groups == in_channels == out_channels
        super().__init__(in_channels, out_channels,
                         self.kernel_size[0] * self.kernel_size[1],
                         kernel_num, depthwise, **kwargs)
        self.weight = nn.Parameter(
            torch.empty(kernel_num, out_channels, in_channels // groups,
                        *self.kernel_size))
        self.bias = (nn.Parameter(torch.empty(kernel_num, out_channels))
                     if bias else None)
        self.path = select_conv_path(
            kernel_num, self.generator.head_sizes['spatial'] > 0,
            self.kernel_size, groups, self.padding)
        self.reset_parameters()

    def reset_parameters(self):
        """Each candidate kernel drawn as ODConv (and mmpretrain's CNNs) draw
        a conv kernel: Kaiming normal, fan_out, ReLU gain."""
        for kernel in self.weight:
            nn.init.kaiming_normal_(kernel, mode='fan_out',
                                    nonlinearity='relu')
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, stride={self.stride}, '
                f'padding={self.padding}, dilation={self.dilation}, '
                f'groups={self.groups}, kernel_num={self.kernel_num}, '
                f'kr_dims={self.kr_dims}, path={self.path}')

    def _conv(self, x: torch.Tensor, weight: torch.Tensor,
              groups: int) -> torch.Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding,
                        self.dilation, groups)

    def _mixed_bias(self, att: KernelAttention) -> Optional[torch.Tensor]:
        if self.bias is None:
            return None
        if att.kernel is None:
            return self.bias[0]
        return att.kernel @ self.bias

    def _mixed_kernels(self, att: KernelAttention,
                       batch: int) -> torch.Tensor:
        """(B, C_out, C_in/g, kh, kw): Σ_k a_k · (s ⊙ W_k) in one matmul."""
        weight = self.weight
        if att.kernel is None:
            kernels = weight.expand(batch, *weight.shape[1:])
        else:
            kernels = (att.kernel @ weight.flatten(1).to(att.kernel.dtype)
                       ).view(-1, *weight.shape[1:])
        if att.spatial is not None:
            kernels = kernels * att.spatial.view(-1, 1, 1,
                                                 *self.kernel_size)
        return kernels

    def _forward_static(self, x, att):
        return self._conv(x, self.weight[0], self.groups)

    def _forward_pointwise(self, x, att):
        if self.stride != (1, 1):
            x = x[:, :, ::self.stride[0], ::self.stride[1]]
        b, c, h, w = x.shape
        kernels = self._mixed_kernels(att, b).flatten(1, 3).view(
            b, self.out_channels, c)
        out = torch.bmm(kernels.to(x.dtype), x.reshape(b, c, h * w))
        return out.view(b, self.out_channels, h, w)

    def _forward_grouped(self, x, att):
        b, c, h, w = x.shape
        kernels = self._mixed_kernels(att, b).flatten(0, 1)
        out = self._conv(
            x.reshape(1, b * c, h, w), kernels.to(x.dtype), b * self.groups)
        return out.view(b, self.out_channels, *out.shape[-2:])

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        att, d_next = self.attend(x.mean(dim=(2, 3)), d)
        if att.channel is not None:
            x = x * att.channel[:, :, None, None].to(x.dtype)
        out = getattr(self, f'_forward_{self.path}')(x, att)
        if att.filter is not None:
            out = out * att.filter[:, :, None, None].to(out.dtype)
        bias = self._mixed_bias(att)
        if bias is not None:
            out = out + bias.to(out.dtype).view(-1, self.out_channels, 1, 1)
        return out, d_next

    @classmethod
    def from_static(cls, conv: nn.Conv2d, **kwargs) -> 'DynamicConv2d':
        """A dynamic conv with ``conv``'s geometry and bias setting."""
        if conv.padding_mode != 'zeros':
            raise ValueError(
                f'DynamicConv2d supports zero padding only; {conv} uses '
                f'padding_mode={conv.padding_mode!r}')
        if isinstance(conv.padding, str):
            raise ValueError(
                f'DynamicConv2d needs numeric padding; {conv} uses '
                f'padding={conv.padding!r}')
        return cls(conv.in_channels, conv.out_channels, conv.kernel_size,
                   conv.stride, conv.padding, conv.dilation, conv.groups,
                   conv.bias is not None, **kwargs)

