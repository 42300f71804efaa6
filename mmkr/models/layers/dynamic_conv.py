"""Dynamic 2D convolution with K candidate kernels and the KR path."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from .dynamic_layer import DynamicLayer
from .kernel_generator import KernelAttention

CONV_PATHS = ('static', 'pointwise', 'grouped', 'mixed', 'unfold')


def select_conv_path(kernel_num: int, has_spatial: bool, kernel_size,
                     groups: int, padding, batch_agnostic: bool = False
                     ) -> str:
    """Pick the cheapest exact way to run a dynamic conv from its shape.

    - ``'static'``: one candidate and no spatial attention. The per-sample
      kernel is the static one scaled per input and output channel, so the
      channel and filter attentions scale features around a static conv.
    - ``'pointwise'``: a 1x1 conv without groups or padding. The per-sample
      (C_out, C_in) kernels are small; one batched matmul applies them.
    - ``'grouped'``: everything else. Per-sample kernels are aggregated over
      K in one matmul and the batch is folded into the groups of a single
      conv, (1, B*C_in, H, W) * (B*C_out, C_in/g, k, k).

    ``'grouped'`` puts the batch size into the conv's ``groups``, which a
    graph with a dynamic batch axis cannot hold (ONNX's ``group`` is a
    constant, and ``torch.compile`` recompiles for every batch size). With
    ``batch_agnostic=True`` it is replaced by a path whose ops do not depend
    on the batch size:

    - ``'mixed'`` (no spatial attention): the K candidates as one static conv
      with K*C_out outputs, mixed per sample by the kernel attention; no
      per-sample kernel at all, at K times the conv's multiply-adds;
    - ``'unfold'`` (spatial attention): the spatial attention scales the
      kernel positions of the unfolded input, and a batched matmul applies
      the per-sample kernel mixed over K (the static kernel for K = 1).
    """
    if kernel_num == 1 and not has_spatial:
        return 'static'
    if _pair(kernel_size) == (1, 1) and groups == 1 and _pair(padding) == (0, 0):
        return 'pointwise'
    if batch_agnostic:
        return 'unfold' if has_spatial else 'mixed'
    return 'grouped'


def capturing_graph() -> bool:
    """True while torch.compile, torch.export or the ONNX exporter traces."""
    return (torch.compiler.is_compiling() or torch.onnx.is_in_onnx_export()
            or torch.jit.is_tracing())


class DynamicConv2d(DynamicLayer):
    """Y = f ⊙ conv(c ⊙ X, Σ_k a_k · (s ⊙ W_k)) + Σ_k a_k b_k, per sample.

    c, f, s and a are the channel, filter, spatial and kernel attentions of
    :class:`KernelGenerator` (ODConv's), computed from h = GAP(X) and, with KR
    on, from the incoming kernel representation d. A missing attention is 1
    (a = 1 for K = 1). With ``kr_dims=0`` this is ODConv; with
    ``attention='dyconv'`` or ``'condconv'`` it is DyConv or CondConv.

    The bias, where there is one, is mixed like the kernels and added after
    the filter attention.

    Execution. c and f always scale features (c ⊙ X before the conv, f after
    it), never kernels, and no path builds the K-fold (B, K, C_out, C_in/g,
    k, k) tensor that ODConv's code sums over K. The path is fixed at
    construction by :func:`select_conv_path` and stored in :attr:`path`:

    - ``'static'`` (K = 1, no spatial attention: every 1x1 conv of a 1x
      network, DyConv/CondConv never): a static conv between the two
      feature scalings, the cost of the static layer plus two products.
    - ``'pointwise'`` (1x1, groups 1, no padding, K > 1): one (B, K) x
      (K, C_out*C_in) matmul gives the per-sample kernels, one batched matmul
      applies them to the (strided) input.
    - ``'grouped'`` (the rest: k > 1, or groups > 1): the per-sample kernels
      Σ_k a_k (s ⊙ W_k) come from one matmul per kernel position (s joins
      the coefficients a_k, so no unscaled kernel is kept for backward),
      and one conv with the batch folded into its groups applies
      them. It beats the batch-agnostic paths in eager mode: the
      K*C_out-output conv (``'mixed'``) costs K times the multiply-adds, and
      the unfold path pays for the k*k-fold unfolded input and its col2im
      backward (``tools/analysis_tools/benchmark.py --layers --unfold``
      times it beside the others).

    While a graph is captured (torch.compile, torch.export, ONNX export;
    see :func:`capturing_graph`) ``'grouped'`` gives way to
    :attr:`graph_path`, the batch-agnostic ``'mixed'`` or ``'unfold'``: the
    batch size is then never a conv's ``groups``, so one graph serves every
    batch size. All paths compute the same function.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias: as for :class:`torch.nn.Conv2d`.
        **kwargs: the KR options of :class:`DynamicLayer`.

    Shapes:
        x: (B, C_in, H, W), d: (B, D) or None
        -> y: (B, C_out, H', W'), d_{i+1}: (B, D) or None; y is
        channels_last when x is.
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
        has_spatial = self.generator.head_sizes['spatial'] > 0
        self.path = select_conv_path(kernel_num, has_spatial,
                                     self.kernel_size, groups, self.padding)
        self.graph_path = select_conv_path(
            kernel_num, has_spatial, self.kernel_size, groups, self.padding,
            batch_agnostic=True)
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

    def _output_size(self, h: int, w: int) -> Tuple[int, int]:
        return tuple(
            (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
            for size, pad, dil, k, stride in zip((h, w), self.padding,
                                                 self.dilation,
                                                 self.kernel_size,
                                                 self.stride))

    def _mixed_bias(self, att: KernelAttention) -> Optional[torch.Tensor]:
        if self.bias is None:
            return None
        if att.kernel is None:
            return self.bias[0]
        return att.kernel @ self.bias

    def _mixed_kernels(self, att: KernelAttention,
                       batch: int) -> torch.Tensor:
        """(B, C_out, C_in/g, kh, kw): Σ_k a_k · (s ⊙ W_k).

        The sum over K is one matmul. With a spatial attention s joins the
        coefficients, a_k * s_p, and one matmul per kernel position p mixes
        the candidates, so the unscaled Σ_k a_k W_k is never kept for the
        backward pass (it would double the kernels' memory).
        """
        weight = self.weight
        if att.spatial is None:
            if att.kernel is None:
                return weight.expand(batch, *weight.shape[1:])
            return (att.kernel @ weight.flatten(1).to(att.kernel.dtype)
                    ).view(-1, *weight.shape[1:])
        kernel = (att.kernel if att.kernel is not None else
                  att.spatial.new_ones(batch, 1))
        coef = kernel[:, :, None] * att.spatial[:, None, :]  # (B, K, P)
        candidates = weight.flatten(1, 2).flatten(2).permute(2, 0, 1)
        kernels = torch.bmm(coef.permute(2, 0, 1),
                            candidates.to(coef.dtype))  # (P, B, C_out*C_in/g)
        return kernels.permute(1, 2, 0).view(batch, *weight.shape[1:])

    def _forward_static(self, x, att):
        return self._conv(x, self.weight[0].to(x.dtype), self.groups)

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
        # one copy into the layout the conv's fast kernels read
        kernels = self._mixed_kernels(att, b).flatten(0, 1).contiguous()
        out = self._conv(
            x.reshape(1, b * c, h, w), kernels.to(x.dtype), b * self.groups)
        return out.view(b, self.out_channels, *out.shape[-2:])

    def _forward_mixed(self, x, att):
        """Σ_k a_k conv(X, W_k): one conv with K*C_out outputs, ordered
        group by group so that its groups are the layer's."""
        k, g = self.kernel_num, self.groups
        weight = self.weight.view(k, g, -1, *self.weight.shape[2:])
        weight = weight.transpose(0, 1).flatten(0, 2)
        out = self._conv(x, weight.to(x.dtype), g)
        b, _, h, w = out.shape
        out = torch.einsum('bgkohw,bk->bgohw',
                           out.view(b, g, k, -1, h, w),
                           att.kernel.to(out.dtype))
        return out.reshape(b, self.out_channels, h, w)

    def _forward_unfold(self, x, att):
        """(Σ_k a_k W_k) · (s ⊙ unfold(X)) as a batched matmul per group."""
        b, c, h, w = x.shape
        positions = self.kernel_size[0] * self.kernel_size[1]
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding,
                        self.stride)
        if att.spatial is not None:
            cols = cols.view(b, c, positions, -1) * att.spatial.view(
                b, 1, positions, 1).to(cols.dtype)
        cols = cols.reshape(b, self.groups, c // self.groups * positions, -1)
        if att.kernel is None:
            kernels = self.weight[0].reshape(self.groups, -1, cols.size(2))
        else:
            kernels = (att.kernel @ self.weight.flatten(1).to(
                att.kernel.dtype)).view(b, self.groups, -1, cols.size(2))
        out = torch.matmul(kernels.to(cols.dtype), cols)
        return out.reshape(b, self.out_channels, *self._output_size(h, w))

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        att, d_next = self.attend(x.mean(dim=(2, 3)), d)
        channels_last = (x.dim() == 4 and not x.is_contiguous()
                         and x.is_contiguous(
                             memory_format=torch.channels_last))
        path = self.path
        if path == 'grouped' and capturing_graph():
            path = self.graph_path
        if att.channel is not None:
            x = x * att.channel[:, :, None, None].to(x.dtype)
        out = getattr(self, f'_forward_{path}')(x, att)
        if att.filter is not None:
            out = out * att.filter[:, :, None, None].to(out.dtype)
        bias = self._mixed_bias(att)
        if bias is not None:
            out = out + bias.to(out.dtype).view(-1, self.out_channels, 1, 1)
        if channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
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

