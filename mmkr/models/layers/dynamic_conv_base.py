"""What every dynamic Conv2d shares, whatever its method: the static conv's
geometry, ``from_static``, the bias and memory-format ending, and the
execution-path interface that ``KRBackbone(conv_path=...)`` drives."""
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from .autotune import AUTOTUNER, detached_inputs
from .dynamic_layer import DynamicLayer
from .per_sample_conv import conv_output_size

# nn.Conv2d's padding modes and the F.pad mode that applies each
PADDING_MODES = dict(
    zeros='constant', reflect='reflect', replicate='replicate',
    circular='circular')


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


def unfold_wins(out_positions: int, out_channels: int, groups: int) -> bool:
    """True where applying per-sample kernels to the unfolded input beats the
    batch-folded grouped conv: fewer than half as many output positions as
    output channels per group (see :func:`select_conv_path`)."""
    return 2 * out_positions < out_channels // groups


def conv_padding(kernel_size: Tuple[int, int], stride: Tuple[int, int],
                 padding: Union[int, Sequence[int], str],
                 dilation: Tuple[int, int], padding_mode: str = 'zeros'
                 ) -> Tuple[Tuple[int, int], Optional[Tuple[int, ...]]]:
    """How a dynamic conv pads as ``nn.Conv2d(padding, padding_mode)`` does.

    Returns the symmetric zero padding the conv itself applies and, where
    that cannot express the static layer's padding (another
    ``padding_mode``, or ``'same'`` with an even extent, which pads one more
    on the right and bottom as PyTorch does), the ``F.pad`` widths (left,
    right, top, bottom) to apply to the input first, the conv then padding
    nothing.
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(f'padding_mode must be one of '
                         f'{list(PADDING_MODES)}, got {padding_mode!r}')
    if isinstance(padding, str):
        if padding == 'valid':
            pads = [(0, 0), (0, 0)]
        elif padding == 'same':
            if stride != (1, 1):
                raise ValueError("padding='same' needs stride 1, as for "
                                 f'nn.Conv2d; got stride {stride}')
            pads = [(extent // 2, extent - extent // 2) for extent in (
                d * (k - 1) for d, k in zip(dilation, kernel_size))]
        else:
            raise ValueError("padding must be a number, a pair, 'same' or "
                             f"'valid', got {padding!r}")
    else:
        pads = [(p, p) for p in _pair(padding)]
    if padding_mode == 'zeros' and all(a == b for a, b in pads):
        return (pads[0][0], pads[1][0]), None
    return (0, 0), (*pads[1], *pads[0])


class DynamicConvBase(DynamicLayer):
    """Base of the dynamic convs: geometry, padding, bias and memory-format
    ending, and the choice of execution path.

    A method's conv computes one function by one or more exact *paths*,
    methods ``_forward_<path>(x, att)`` of the subclass; it lists those that
    are exact for its geometry in :meth:`valid_paths` and picks one from
    the input size in :meth:`rule_path`. :attr:`path` overrides the rule for
    every method alike (``KRBackbone(conv_path=...)``): None keeps the
    rule, ``'autotune'`` times every valid path once per signature and keeps
    the fastest (:mod:`.autotune`, as ``torch.backends.cudnn.benchmark``
    does; the rule decides while compiling or exporting), and a path name
    forces that path. :attr:`last_path` names the path the last call ran.
    While a graph is exported, a path that folds the
    batch into a conv's groups (:attr:`batch_folded_paths`) gives way to
    :attr:`graph_path`, whose ops do not depend on the batch size.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, padding_mode: as for :class:`torch.nn.Conv2d`, ``'same'``
            and ``'valid'`` padding and every padding mode included
            (:func:`conv_padding`).
        method (str): the method's name in the registry.
        kr_dims (int): D, the size of d; 0 switches KR off.

    Shapes:
        x: (B, C_in, H, W), d: (B, D) or None
        -> y: (B, C_out, H', W'), d_{i+1}: (B, D) or None; y is
        channels_last when x is.
    """

    batch_folded_paths: Tuple[str, ...] = ('grouped', )

    def __init__(self, in_channels: int, out_channels: int, kernel_size,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 padding_mode: str = 'zeros', method: str = 'odconv',
                 kr_dims: int = 0):
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f'in_channels ({in_channels}) and out_channels '
                f'({out_channels}) must be divisible by groups ({groups})')
        super().__init__(in_channels, out_channels, method, kr_dims)
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.padding_mode = padding_mode
        self.padding, self.input_padding = conv_padding(
            self.kernel_size, self.stride, padding, self.dilation,
            padding_mode)
        self.path: Optional[str] = None
        self.last_path: Optional[str] = None
        self.graph_path = 'unfold'

    @classmethod
    def from_static(cls, conv: nn.Conv2d, **kwargs) -> 'DynamicConvBase':
        """The dynamic conv of ``cls`` with ``conv``'s geometry, padding and
        bias setting; ``kwargs`` are the method's options."""
        return cls(conv.in_channels, conv.out_channels, conv.kernel_size,
                   conv.stride, conv.padding, conv.dilation, conv.groups,
                   conv.bias is not None, padding_mode=conv.padding_mode,
                   **kwargs)

    def options_repr(self) -> str:
        """The method's own options, for :meth:`extra_repr`."""
        return ''

    def extra_repr(self) -> str:
        parts = [
            f'{self.in_channels}, {self.out_channels}, '
            f'kernel_size={self.kernel_size}, stride={self.stride}, '
            f'padding={self.padding}, dilation={self.dilation}, '
            f'groups={self.groups}'
        ]
        if self.input_padding is not None:
            parts.append(f'input_padding={self.input_padding}, '
                         f'padding_mode={self.padding_mode!r}')
        if self.options_repr():
            parts.append(self.options_repr())
        parts.append(f'kr_dims={self.kr_dims}, path={self.path or "auto"}')
        return ', '.join(parts)

    def output_size(self, height: int, width: int) -> Tuple[int, int]:
        """H', W' for an input of ``height`` x ``width`` (after any input
        padding)."""
        return conv_output_size((height, width), self.kernel_size,
                                self.stride, self.padding, self.dilation)

    def valid_paths(self) -> List[str]:
        """The paths that are exact for this layer as it is now."""
        raise NotImplementedError

    def sample_kernels(self, att: Any) -> torch.Tensor:
        """W_b, (B, C_out, C_in/g, kh, kw): the kernel that sample b's
        attentions ``att`` (its generator's ``activate`` output) give, so
        that the layer's output for sample b is conv(x_b, W_b) plus a bias
        per output channel. What analysis tools read as the generated
        kernels (t-SNE, silhouettes)."""
        raise NotImplementedError

    def rule_path(self, height: int, width: int) -> str:
        """The rule of thumb's path for an input of ``height`` x ``width``."""
        raise NotImplementedError

    def select_path(self, height: int, width: int) -> str:
        """The eager path for an input of ``height`` x ``width``:
        :attr:`path` if it names one, else :meth:`rule_path`'s."""
        if self.path not in (None, 'autotune'):
            return self.path
        return self.rule_path(height, width)

    def execution_path(self, x: torch.Tensor, att: Any) -> str:
        """The path of this call on the (padded) input ``x``: the
        autotuner's with ``path='autotune'`` (not while compiling or
        exporting), else :meth:`select_path`'s; :attr:`graph_path` in place
        of a batch-folded path while a graph is exported."""
        exporting = exporting_graph()
        if (self.path == 'autotune' and not exporting
                and not torch.compiler.is_compiling()):
            return self._autotuned_path(x, att)
        path = self.select_path(*x.shape[-2:])
        return (self.graph_path
                if exporting and path in self.batch_folded_paths else path)

    def run_path(self, x: torch.Tensor, att: Any) -> torch.Tensor:
        """The conv of ``x`` with the attentions ``att`` applied, by the path
        of this call; the input padding first, where the layer has one."""
        if self.input_padding is not None:
            x = F.pad(x, self.input_padding,
                      mode=PADDING_MODES[self.padding_mode])
        self.last_path = self.execution_path(x, att)
        return getattr(self, f'_forward_{self.last_path}')(x, att)

    def _autotuned_path(self, x: torch.Tensor, att: Any) -> str:
        """The fastest of :meth:`valid_paths` for this signature, timed
        forward (and backward where autograd records) on copies of the
        inputs, once per process (:data:`AUTOTUNER`)."""
        paths = self.valid_paths()
        if len(paths) == 1:
            return paths[0]
        grad = torch.is_grad_enabled()
        signature = (type(self).__name__, self.method, self.extra_repr(),
                     self.training, tuple(x.shape), conv_dtype(x), x.device,
                     is_channels_last(x), grad)

        def runner(path: str):

            def run():
                x_copy, *att_copy = detached_inputs([x, *att], grad)
                out = getattr(self, f'_forward_{path}')(x_copy,
                                                       type(att)(*att_copy))
                if grad:
                    leaves = [
                        t for t in (x_copy, *att_copy, *self.parameters())
                        if t is not None and t.requires_grad
                    ]
                    torch.autograd.grad(out, leaves, torch.ones_like(out),
                                        allow_unused=True)

            return run

        return AUTOTUNER.choose(
            signature, paths, runner,
            f'{type(self).__name__}({self.extra_repr()}) on '
            f'{tuple(x.shape)} {conv_dtype(x)}')

    def finish(self, out: torch.Tensor, x: torch.Tensor,
               bias: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``out`` plus ``bias`` ((C_out,) or per sample (B, C_out)), laid
        out channels_last where the input ``x`` is."""
        if bias is not None:
            out = out + bias.to(out.dtype).view(-1, self.out_channels, 1, 1)
        if is_channels_last(x):
            out = out.contiguous(memory_format=torch.channels_last)
        return out
