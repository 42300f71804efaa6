"""Dynamic 2D convolution with K candidate kernels and the KR path."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from .autotune import AUTOTUNER, detached_inputs
from .dynamic_layer import MixingLayer
from .kernel_generator import KernelAttention
from .per_sample_conv import conv_output_size, per_sample_conv2d

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


def unfold_wins(out_positions: int, out_channels: int, groups: int) -> bool:
    """True where applying per-sample kernels to the unfolded input beats the
    batch-folded grouped conv: fewer than half as many output positions as
    output channels per group (see :func:`select_conv_path`)."""
    return 2 * out_positions < out_channels // groups


def static_conv_args(conv: nn.Conv2d) -> tuple:
    """(in, out, kernel_size, stride, padding, dilation, groups, bias) of a
    zero-padded conv with numeric padding, the convs a dynamic one can
    replace."""
    if conv.padding_mode != 'zeros':
        raise ValueError(
            f'dynamic convs support zero padding only; {conv} uses '
            f'padding_mode={conv.padding_mode!r}')
    if isinstance(conv.padding, str):
        raise ValueError(
            f'dynamic convs need numeric padding; {conv} uses '
            f'padding={conv.padding!r}')
    return (conv.in_channels, conv.out_channels, conv.kernel_size,
            conv.stride, conv.padding, conv.dilation, conv.groups,
            conv.bias is not None)


def conv_repr(layer: nn.Module) -> str:
    """The geometry of a dynamic conv as ``nn.Conv2d`` prints it."""
    return (f'{layer.in_channels}, {layer.out_channels}, '
            f'kernel_size={layer.kernel_size}, stride={layer.stride}, '
            f'padding={layer.padding}, dilation={layer.dilation}, '
            f'groups={layer.groups}')


def is_channels_last(x: torch.Tensor) -> bool:
    """True for a 4D tensor laid out channels_last (and not also
    contiguous, as a tensor with one channel or one pixel is)."""
    return (x.dim() == 4 and not x.is_contiguous()
            and x.is_contiguous(memory_format=torch.channels_last))


def exporting_graph() -> bool:
    """True while the ONNX exporter or TorchScript's tracer records a graph:
    both would bake the batch size of a batch-folded conv into it."""
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


def conv_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a conv on ``x`` computes in: autocast's where it is on."""
    device = x.device.type
    return (torch.get_autocast_dtype(device)
            if torch.is_autocast_enabled(device) else x.dtype)


class DynamicConv2d(MixingLayer):
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
    :func:`exporting_graph`), ``'grouped'`` gives way to :attr:`graph_path`,
    the batch-agnostic ``'mixed'`` or ``'unfold'``: the batch size is then
    never a conv's ``groups``, so one exported graph serves every batch
    size. All paths compute the same function. :attr:`last_path` names the
    path the last call ran.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias: as for :class:`torch.nn.Conv2d`.
        kernel_num (int): K, the number of candidate kernels.
        **kwargs: the method and KR options of :class:`MixingLayer`.

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
        self.has_spatial = self.generator.head_sizes['spatial'] > 0
        self.path: Optional[str] = None
        self.last_path: Optional[str] = None
        self.graph_path = select_conv_path(
            kernel_num, self.has_spatial, self.kernel_size, groups,
            self.padding, batch_agnostic=True)
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
        return (f'{conv_repr(self)}, kernel_num={self.kernel_num}, '
                f'kr_dims={self.kr_dims}, path={self.path or "auto"}')

    def _conv(self, x: torch.Tensor, weight: torch.Tensor,
              groups: int) -> torch.Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding,
                        self.dilation, groups)

    def _output_size(self, h: int, w: int) -> Tuple[int, int]:
        return conv_output_size((h, w), self.kernel_size, self.stride,
                                self.padding, self.dilation)

    def select_path(self, height: int, width: int) -> str:
        """The eager path for an input of ``height`` x ``width``:
        :attr:`path` if it names one, else :func:`select_conv_path`'s
        choice."""
        if self.path not in (None, 'autotune'):
            return self.path
        out_h, out_w = self._output_size(height, width)
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
        return out.reshape(b, self.out_channels, *self._output_size(h, w))

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

    def execution_path(self, x: torch.Tensor, att: KernelAttention) -> str:
        """The path of this call: the autotuner's choice with
        ``path='autotune'`` (never while compiling or exporting, where the
        rule decides), else :meth:`select_path`'s; :attr:`graph_path` in
        place of ``'grouped'`` while a graph is exported."""
        exporting = exporting_graph()
        if (self.path == 'autotune' and not exporting
                and not torch.compiler.is_compiling()):
            return self._autotuned_path(x, att)
        path = self.select_path(*x.shape[-2:])
        return self.graph_path if path == 'grouped' and exporting else path

    def _autotuned_path(self, x: torch.Tensor, att: KernelAttention) -> str:
        """The fastest of :meth:`valid_paths` for this signature, timed
        forward (and backward where autograd records) on copies of the
        inputs, once per process (:data:`AUTOTUNER`)."""
        grad = torch.is_grad_enabled()
        signature = (self.in_channels, self.out_channels, self.kernel_size,
                     self.stride, self.padding, self.dilation, self.groups,
                     self.kernel_num, self.has_spatial, tuple(x.shape),
                     conv_dtype(x), x.device, is_channels_last(x), grad)

        def runner(path: str):

            def run():
                x_copy, *att_copy = detached_inputs([x, *att], grad)
                out = getattr(self, f'_forward_{path}')(
                    x_copy, KernelAttention(*att_copy))
                if grad:
                    leaves = [
                        t for t in (x_copy, *att_copy, self.weight)
                        if t is not None and t.requires_grad
                    ]
                    torch.autograd.grad(out, leaves, torch.ones_like(out),
                                        allow_unused=True)

            return run

        return AUTOTUNER.choose(
            signature, self.valid_paths(), runner,
            f'{self.in_channels}->{self.out_channels} '
            f'k={self.kernel_size} s={self.stride} g={self.groups} '
            f'K={self.kernel_num} on {tuple(x.shape)} {conv_dtype(x)}')

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
        return out.reshape(b, self.out_channels, *self._output_size(h, w))

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        att, d_next = self.attend(x.mean(dim=(2, 3)), d)
        channels_last = is_channels_last(x)
        if att.channel is not None:
            x = x * att.channel[:, :, None, None].to(x.dtype)
        path = self.execution_path(x, att)
        self.last_path = path
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
        return cls(*static_conv_args(conv), **kwargs)
