"""WeightNet (Ma et al., ECCV 2020) with the KR path: the kernel is the output
of a grouped fully connected layer on a gate computed from the input."""
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn

from .dynamic_conv_base import DynamicConvBase, conv_dtype, unfold_wins
from .per_sample_conv import per_sample_conv2d, per_sample_conv2d_unfold
from .registry import DynamicMethod, register_method
from .representation import RepresentationFusion, attention_hidden_dims


class GroupedLinear(nn.Module):
    """y = W x with a block-diagonal W of ``groups`` blocks: WeightNet's
    grouped 1x1 conv on a vector, without bias.

    Shapes:
        (B, in_features) -> (B, out_features)
    """

    def __init__(self, in_features: int, out_features: int, groups: int):
        super().__init__()
        if in_features % groups or out_features % groups:
            raise ValueError(
                f'GroupedLinear: {in_features} inputs and {out_features} '
                f'outputs must be divisible by groups ({groups})')
        self.groups = groups
        self.weight = nn.Parameter(
            torch.empty(out_features, in_features // groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight.view(self.groups, -1, self.weight.shape[1])
        out = torch.einsum('bgi,goi->bgo', x.view(x.shape[0], self.groups, -1),
                           weight.to(x.dtype))
        return out.flatten(1)


class WeightNetGate(NamedTuple):
    """gate: sigmoid(alpha~), (B, M·C_out) or, depthwise, (B, M/G·C)."""
    gate: torch.Tensor


class WeightNetGenerator(nn.Module):
    """KG of WeightNet: alpha~ = W_1 h~ + b_1, W = grouped FC(sigmoid(alpha~)).

    Full conv: M·C_out gates, C_out·C_in·k² kernel weights from G·C_out
    groups (each group's M/G gates make C_in·k²/G weights). Depthwise conv
    (WeightNet_DW): M/G·C gates, C·k² weights from C groups. M = G = 2 as in
    the authors' code. WeightNet has no temperature.

    Shapes:
        h~: (B, A) -> alpha~: (B, M·C_out) (depthwise: (B, M/G·C));
        :meth:`kernels` -> (B, C_out, C_in/g, kh, kw)
    """

    def __init__(self, hidden_dims: int, in_channels: int, out_channels: int,
                 kernel_size: Tuple[int, int], depthwise: bool,
                 m: int = 2, g: int = 2):
        super().__init__()
        positions = kernel_size[0] * kernel_size[1]
        if depthwise:
            gates, groups = m // g * in_channels, in_channels
            self.kernel_shape = (out_channels, 1, *kernel_size)
        else:
            gates, groups = m * out_channels, g * out_channels
            self.kernel_shape = (out_channels, in_channels, *kernel_size)
        self.fc1 = nn.Linear(hidden_dims, gates)
        self.fc2 = GroupedLinear(gates, out_channels * self.kernel_shape[1] *
                                 positions, groups)
        self.state_dims = gates

    def reset_parameters(self):
        """WeightNet's initialisation of its ShuffleNetV2: every conv but
        the first N(0, std = 1 / weight.shape[1]), zero biases
        (megvii-model/WeightNet shufflenet_v2.py line 193). MegEngine
        stores a conv of g > 1 groups as (g, out/g, in/g, 1, 1), so
        shape[1] is the fan-in C for the plain fc1 but out/g for the grouped
        fc2: std 2 / (C_in·k²) (G·C_out groups of C_in·k²/G outputs), or
        1 / k² for the depthwise form (C groups of k² outputs)."""
        nn.init.normal_(self.fc1.weight, 0, 1 / self.fc1.in_features)
        nn.init.zeros_(self.fc1.bias)
        nn.init.normal_(self.fc2.weight, 0,
                        self.fc2.groups / self.fc2.weight.shape[0])

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.fc1(hidden)

    def activate(self, logits: torch.Tensor) -> WeightNetGate:
        return WeightNetGate(torch.sigmoid(logits))

    def kernels(self, att: WeightNetGate) -> torch.Tensor:
        return self.fc2(att.gate).view(-1, *self.kernel_shape)


class WeightNetConv2d(DynamicConvBase):
    """y = conv(X, W(x)) per sample, W(x) = grouped FC(sigmoid(W_1 h~ + b_1)).

    WeightNet as its authors' ``WeightNet`` / ``WeightNet_DW`` compute it,
    with F the reduction x_gap = W_r GAP(X) + b_r to A = max(16, C_in/16)
    (:class:`RepresentationFusion` without norm and activation; with KR on
    it reads cat[d, GAP(X)]). Every sample's kernel is generated whole, so
    it runs as a per-sample conv: one conv with the batch folded into its
    groups (``'grouped'``), or, on small maps and in exported graphs, a
    batched matmul on the unfolded input (``'unfold'``, batch-agnostic).
    The static bias, where there is one, is added as it is.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias: as for :class:`torch.nn.Conv2d`; groups 1 or
        depthwise.
        kr_dims (int): D, the size of d; 0: plain WeightNet.
        generate_kr (bool): see :meth:`DynamicLayer.build_kr_generator`.

    Shapes:
        x: (B, C_in, H, W), d: (B, D) or None
        -> y: (B, C_out, H', W'), d_{i+1}: (B, D) or None
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = False, padding_mode: str = 'zeros',
                 kr_dims: int = 0, generate_kr: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, padding_mode, 'weightnet',
                         kr_dims)
        depthwise = groups == in_channels == out_channels
        if groups != 1 and not depthwise:
            raise ValueError(
                f'WeightNet has a full and a depthwise form, not one for '
                f'groups={groups} with {in_channels} -> {out_channels} '
                'channels')
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.fusion = RepresentationFusion(
            in_channels, kr_dims, attention_hidden_dims(in_channels),
            norm=None, act=False)
        self.generator = WeightNetGenerator(self.fusion.out_dims, in_channels,
                                            out_channels, self.kernel_size,
                                            depthwise)
        self.build_kr_generator(generate_kr)
        self.reset_parameters()

    def reset_parameters(self):
        """WeightNet's initialisation (:meth:`WeightNetGenerator.
        reset_parameters`; the reduction, a plain 1x1 conv there,
        N(0, std = 1 / fan_in), fan_in = C_in, with KR D + C_in), zero
        bias; K by KR's rule (:meth:`KRGenerator.reset_parameters`)."""
        nn.init.normal_(self.fusion.fc.weight, 0,
                        1 / self.fusion.fc.in_features)
        nn.init.zeros_(self.fusion.fc.bias)
        self.generator.reset_parameters()
        if self.kr_generator is not None:
            self.kr_generator.reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def valid_paths(self) -> List[str]:
        return ['grouped', 'unfold']

    def rule_path(self, height: int, width: int) -> str:
        """``'unfold'`` where it wins (:func:`unfold_wins`), else
        ``'grouped'``."""
        out_h, out_w = self.output_size(height, width)
        return ('unfold' if unfold_wins(out_h * out_w, self.out_channels,
                                        self.groups) else 'grouped')

    def _conv_args(self) -> tuple:
        return (list(self.stride), list(self.padding), list(self.dilation),
                self.groups)

    def sample_kernels(self, att: WeightNetGate) -> torch.Tensor:
        """The generated kernels, whole."""
        return self.generator.kernels(att)

    def _forward_grouped(self, x: torch.Tensor,
                         att: WeightNetGate) -> torch.Tensor:
        dtype = conv_dtype(x)
        kernels = self.sample_kernels(att).to(dtype).contiguous()
        return per_sample_conv2d(x.to(dtype), kernels, *self._conv_args())

    def _forward_unfold(self, x: torch.Tensor,
                        att: WeightNetGate) -> torch.Tensor:
        dtype = conv_dtype(x)
        return per_sample_conv2d_unfold(x.to(dtype),
                                        self.sample_kernels(att).to(dtype),
                                        *self._conv_args())

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        att, d_next = self.attend(x.mean(dim=(2, 3)), d)
        return self.finish(self.run_path(x, att), x, self.bias), d_next


register_method(
    DynamicMethod(name='weightnet', code=5, display_name='WeightNet',
                  layers={nn.Conv2d: WeightNetConv2d}))
