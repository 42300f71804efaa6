"""Dynamic 2D convolution with K candidate kernels and the KR path."""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from .dynamic_conv_base import DynamicConvBase, conv_dtype, unfold_wins
from .dynamic_layer import MixingLayer
from .dynamic_linear import DynamicLinear
from .kernel_generator import KernelAttention, reset_mixing_attention
from .per_sample_conv import per_sample_conv2d
from .registry import DynamicMethod, TemperatureSchedule, register_method

CONV_PATHS = ('static', 'pointwise', 'grouped', 'mixed', 'unfold', 'kfold')


def select_conv_path(kernel_num: int, has_spatial: bool, kernel_size,
                     groups: int, padding, out_channels: int = 0,
                     out_positions: Optional[int] = None,
                     batch_agnostic: bool = False) -> str:
    """Pick the cheapest exact way to run a dynamic conv from its shape.

    - ``'static'``: one candidate and no spatial attention. The per-sample
      kernel is the static one scaled per input and output channel, so the
      channel and filter attentions scale features around a static conv.
    - ``'pointwise'``: a 1x1 conv without groups or padding. The per-sample
      (C_out, C_in) kernels are small; one batched matmul applies them.
    - ``'grouped'``: per-sample kernels aggregated over K in one matmul and
      the batch folded into the groups of a single conv,
      (1, B*C_in, H, W) * (B*C_out, C_in/g, k, k).
    - ``'unfold'``: the spatial attention scales the kernel positions of the
      unfolded input, and a batched matmul applies the per-sample kernel
      mixed over K (the static kernel for K = 1). Chosen over ``'grouped'``
      when the output has fewer than half as many positions H'*W'
      (``out_positions``) as a group has output channels: the unfolded
      input, (C_in/g*k*k, H'*W') per group and sample, is then less than
      half the per-sample kernel, (C_out/g, C_in/g*k*k), and a grouped conv
      with few positions and large kernels is bound by moving those kernels,
      forward and backward (2-2.5x slower than unfold on ResNet-18's 7x7
      stage; ``benchmark.py --layers --paths``). Nearer parity the two run
      equally fast and ``'grouped'``, which keeps no unfolded input for
      backward, needs less memory.

    ``'grouped'`` puts the batch size into the conv's ``groups``. That is
    harmless under ``torch.compile``, which sees the batch-folded conv only
    as the opaque operator :func:`per_sample_conv2d`, but a graph exported
    with a dynamic batch axis cannot hold it (ONNX's ``group`` is a
    constant). With ``batch_agnostic=True`` the per-sample cases take a path
    whose ops do not depend on the batch size:

    - ``'mixed'`` (no spatial attention): the K candidates as one static conv
      with K*C_out outputs, mixed per sample by the kernel attention; no
      per-sample kernel at all, at K times the conv's multiply-adds;
    - ``'unfold'`` (spatial attention), as above.
    """
    if kernel_num == 1 and not has_spatial:
        return 'static'
    if (_pair(kernel_size) == (1, 1) and groups == 1
            and _pair(padding) == (0, 0)):
        return 'pointwise'
    if batch_agnostic:
        return 'unfold' if has_spatial else 'mixed'
    if (out_positions is not None
            and unfold_wins(out_positions, out_channels, groups)):
        return 'unfold'
    return 'grouped'


class DynamicConv2d(DynamicConvBase, MixingLayer):
    """Y = f ⊙ conv(c ⊙ X, Σ_k a_k · (s ⊙ W_k)) + Σ_k a_k b_k, per sample.

    c, f, s and a are the channel, filter, spatial and kernel attentions of
    :class:`KernelGenerator`, computed from h = GAP(X) and, with KR on, from
    the incoming kernel representation d. A missing attention is 1 (a = 1
    for K = 1). With ``kr_dims=0`` and ``method='odconv'`` this is ODConv;
    ``method='dyconv'`` or ``'condconv'`` keeps the kernel attention alone
    (DyConv: softmax / T; CondConv: sigmoid routing), each with its
    authors' attention trunk (:func:`mixing_attention`).

    The bias, where there is one, is mixed like the kernels and added after
    the filter attention.

    Execution. c and f always scale features (c ⊙ X before the conv, f after
    it), never kernels, and no path builds the K-fold (B, K, C_out, C_in/g,
    k, k) tensor that ODConv's code sums over K. Each call picks its path
    with :func:`select_conv_path` from the layer's shape and the size of
    its output, unless :attr:`path` fixes one:

    - ``'static'`` (K = 1, no spatial attention: every 1x1 conv of a 1x
      network, DyConv/CondConv never): a static conv between the two
      feature scalings, the cost of the static layer plus two products.
    - ``'pointwise'`` (1x1, groups 1, no padding, K > 1): one (B, K) x
      (K, C_out*C_in) matmul gives the per-sample kernels, one batched matmul
      applies them to the (strided) input.
    - ``'grouped'`` (k > 1 or groups > 1, on large feature maps): the
      per-sample kernels Σ_k a_k (s ⊙ W_k) come from one matmul per kernel
      position (s joins the coefficients a_k, so no unscaled kernel is kept
      for backward), and one conv with the batch folded into its groups
      applies them. It beats the batch-agnostic paths there: the
      K*C_out-output conv (``'mixed'``) costs K times the multiply-adds, and
      the unfold path pays for the k*k-fold unfolded input and its col2im
      backward.
    - ``'unfold'`` (k > 1 or groups > 1, on small feature maps: fewer than
      half as many output positions as output channels per group): s scales
      the unfolded input and a batched matmul applies Σ_k a_k W_k, which
      moves less data than the grouped conv's per-sample kernels there.

    - ``'kfold'`` (any shape): s scales the unfolded input and one static
      GEMM applies all K candidates to all samples, the kernel attention
      mixing the K outputs: K times the multiply-adds, no per-sample kernel,
      batch-agnostic. Never the rule's choice; the autotuner's where it wins.

    ``path='autotune'`` times every exact path (:meth:`valid_paths`) once
    per signature and keeps the fastest (:mod:`.autotune`, as
    ``torch.backends.cudnn.benchmark`` does), all ranks taking rank 0's.

    ``'grouped'`` runs as the custom operator :func:`per_sample_conv2d`, so
    ``torch.compile(dynamic=True)`` keeps one graph for every batch size.
    While the ONNX exporter or TorchScript's tracer records a graph (see
    :func:`~.dynamic_conv_base.exporting_graph`), ``'grouped'`` gives way to :attr:`graph_path`,
    the batch-agnostic ``'mixed'`` or ``'unfold'``: the batch size is then
    never a conv's ``groups``, so one exported graph serves every batch
    size. All paths compute the same function. :attr:`last_path` names the
    path the last call ran.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias, padding_mode: as for :class:`torch.nn.Conv2d`
            (:class:`DynamicConvBase`).
        kernel_num (int): K, the number of candidate kernels.
        method (str): 'odconv', 'dyconv' or 'condconv'.
        kr_dims (int): D, the size of d; 0 switches KR off.
        **kwargs: the further options of
            :meth:`MixingLayer.build_mixing_attention` (``reduction``,
            ``norm``, ``generate_kr``, ...).

    Shapes:
        x: (B, C_in, H, W), d: (B, D) or None
        -> y: (B, C_out, H', W'), d_{i+1}: (B, D) or None; y is
        channels_last when x is.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = False, kernel_num: int = 1,
                 padding_mode: str = 'zeros', method: str = 'odconv',
                 kr_dims: int = 0, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, padding_mode, method,
                         kr_dims)
        self.build_mixing_attention(
            self.kernel_size[0] * self.kernel_size[1], kernel_num,
            groups == in_channels == out_channels, method, **kwargs)
        self.weight = nn.Parameter(
            torch.empty(kernel_num, out_channels, in_channels // groups,
                        *self.kernel_size))
        self.bias = (nn.Parameter(torch.empty(kernel_num, out_channels))
                     if bias else None)
        self.has_spatial = self.generator.head_sizes['spatial'] > 0
        self.graph_path = select_conv_path(
            kernel_num, self.has_spatial, self.kernel_size, groups,
            self.padding, batch_agnostic=True)
        self.reset_parameters()

    def reset_parameters(self):
        """Each candidate kernel drawn as its method's authors draw it, zero
        bias; F and KG by their rule (:func:`reset_mixing_attention`), K by
        KR's (:meth:`KRGenerator.reset_parameters`).

        - ODConv, DyConv: Kaiming normal, fan_out, ReLU gain, N(0, 2 /
          (C_out·k²)), as ``ODConv2d._initialize_weights`` (OSVAI/ODConv
          modules/odconv.py line 111) and mmpretrain's CNNs draw a kernel;
        - CondConv: N(0, 2 / (C_out·k² / g)), the fan-out counted per group
          as timm's ``_init_weight_goog`` counts it for ``CondConv2d``
          (timm/models/_efficientnet_builder.py, ``fix_group_fanout``): the
          same for a full conv, 2 / k² for a depthwise one.
        """
        if self.method == 'condconv':
            kh, kw = self.kernel_size
            fan_out = kh * kw * self.out_channels // self.groups
            nn.init.normal_(self.weight, 0, math.sqrt(2 / fan_out))
        else:
            for kernel in self.weight:
                nn.init.kaiming_normal_(kernel, mode='fan_out',
                                        nonlinearity='relu')
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        reset_mixing_attention(self.fusion, self.generator)
        if self.kr_generator is not None:
            self.kr_generator.reset_parameters()

    def options_repr(self) -> str:
        return f'kernel_num={self.kernel_num}'

    def _conv(self, x: torch.Tensor, weight: torch.Tensor,
              groups: int) -> torch.Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding,
                        self.dilation, groups)

    def rule_path(self, height: int, width: int) -> str:
        """:func:`select_conv_path`'s choice for an input of ``height`` x
        ``width``."""
        out_h, out_w = self.output_size(height, width)
        return select_conv_path(self.kernel_num, self.has_spatial,
                                self.kernel_size, self.groups, self.padding,
                                self.out_channels, out_h * out_w)

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

    def sample_kernels(self, att: KernelAttention) -> torch.Tensor:
        """f ⊙ c ⊙ Σ_k a_k (s ⊙ W_k): the channel attention c scales the
        input channels and the filter attention f the outputs, so both
        fold into the kernel."""
        present = next(a for a in att if a is not None)
        kernels = self._mixed_kernels(att, present.shape[0])
        batch, out_channels, in_per_group = kernels.shape[:3]
        if att.channel is not None:
            # input channel of (group j, in-group i) is j * C_in/g + i
            channel = att.channel.view(batch, self.groups, 1, in_per_group)
            channel = channel.expand(batch, self.groups,
                                     out_channels // self.groups,
                                     in_per_group)
            kernels = kernels * channel.reshape(
                batch, out_channels, in_per_group, 1, 1).to(kernels.dtype)
        if att.filter is not None:
            kernels = kernels * att.filter.view(batch, out_channels, 1, 1,
                                                1).to(kernels.dtype)
        return kernels

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
        dtype = conv_dtype(x)
        # one copy into the layout the conv's fast kernels read
        kernels = self._mixed_kernels(att, x.shape[0]).to(dtype).contiguous()
        return per_sample_conv2d(x.to(dtype), kernels, list(self.stride),
                                 list(self.padding), list(self.dilation),
                                 self.groups)

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
        return out.reshape(b, self.out_channels, *self.output_size(h, w))

    def valid_paths(self) -> List[str]:
        """The exact paths for this layer's geometry and attentions."""
        paths = ['grouped', 'unfold', 'kfold']
        if self.kernel_num == 1 and not self.has_spatial:
            paths.insert(0, 'static')
        if (self.kernel_size == (1, 1) and self.groups == 1
                and self.padding == (0, 0)):
            paths.append('pointwise')
        if self.kernel_num > 1 and not self.has_spatial:
            paths.append('mixed')
        return paths

    def _forward_kfold(self, x, att):
        """Σ_k a_k W_k (s ⊙ unfold(X)): one static GEMM per group applies
        all K candidates to all samples at once, (K*C_out/g, C_in/g*k*k) x
        (C_in/g*k*k, B*H'*W'), and the kernel attention mixes the K
        outputs. No per-sample kernel, K times the multiply-adds, ops that
        do not depend on the batch size."""
        b, c, h, w = x.shape
        k, g = self.kernel_num, self.groups
        positions = self.kernel_size[0] * self.kernel_size[1]
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding,
                        self.stride)
        length = cols.shape[-1]
        if att.spatial is not None:
            cols = cols.view(b, c, positions, length) * att.spatial.view(
                b, 1, positions, 1).to(cols.dtype)
        cols = cols.reshape(b, g, -1, length).permute(1, 2, 0, 3).reshape(
            g, -1, b * length)
        weight = self.weight.view(k, g, self.out_channels // g, -1)
        weight = weight.transpose(0, 1).reshape(g, -1, cols.shape[1])
        out = torch.bmm(weight.to(cols.dtype), cols).view(
            g, k, self.out_channels // g, b, length)
        if att.kernel is None:
            out = out[:, 0].permute(2, 0, 1, 3)
        else:
            out = torch.einsum('gkobl,bk->bgol', out,
                               att.kernel.to(out.dtype))
        return out.reshape(b, self.out_channels, *self.output_size(h, w))

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        att, d_next = self.attend(x.mean(dim=(2, 3)), d)
        out = x
        if att.channel is not None:
            out = out * att.channel[:, :, None, None].to(x.dtype)
        out = self.run_path(out, att)
        if att.filter is not None:
            out = out * att.filter[:, :, None, None].to(out.dtype)
        return self.finish(out, x, self._mixed_bias(att)), d_next


# ODConv's and DyConv's authors anneal T from 30 to 1 over 10 epochs;
# CondConv's routing has no temperature.
_ANNEALED_T = TemperatureSchedule(init=30., final=1., epochs=10.)
for _name, _code, _display, _schedule in (
        ('odconv', 1, 'ODConv', _ANNEALED_T),
        ('dyconv', 2, 'DyConv', _ANNEALED_T),
        ('condconv', 3, 'CondConv', None)):
    register_method(
        DynamicMethod(
            name=_name, code=_code, display_name=_display,
            layers={nn.Conv2d: DynamicConv2d, nn.Linear: DynamicLinear},
            options=('kernel_num', 'reduction', 'attention_norm'),
            layer_kwargs=dict(method=_name), size_option='kernel_num',
            temperature=_schedule))
