"""Dynamic convolution decomposition (DCD, Li et al., ICLR 2021) with the KR
path: W(x) = Λ(x) W_0 + P Φ(x) Q^T."""
import math
from typing import List, NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dynamic_conv_base import DynamicConvBase, conv_dtype
from .per_sample_conv import per_sample_conv2d
from .registry import DynamicMethod, register_method
from .representation import SqueezeExciteFusion, dcd_hard_sigmoid

DCD_LAYOUTS = ('resnet_basic', 'resnet_bottleneck', 'mobilenetv2')


class DCDSizes(NamedTuple):
    """pool: side of the pooled summary h (C_in·pool² values); dim: L, the
    rank of the dynamic channel fusion Φ (L x L); squeeze: A, the width of
    h~."""
    pool: int
    dim: int
    squeeze: int


def dcd_sizes(in_channels: int, out_channels: int, layout: str,
              fc_squeeze: int = 16) -> DCDSizes:
    """The sizes DCD's authors give a layer in each of their networks:

    - ``'resnet_basic'`` (ResNet-18/34 blocks): h pooled 2x2,
      L = ⌊√(4·C_in)⌋, A = max(4·C_in, L²) / 16, at least 4;
    - ``'resnet_bottleneck'`` (ResNet-50 blocks): h = GAP,
      L = ⌊√C_in⌋, A = max(C_in, L²) / 16;
    - ``'mobilenetv2'`` (its 1x1 convs): h pooled 2x2 where the conv
      widens (C_in < C_out), else GAP; L = min(C_in·p², C_out) / r with r
      8 or 2 doubled until L² <= 2·C_in·p², at least 4;
      A = max(C_in·p², L²) / ``fc_squeeze``, at least 4.
    """
    if layout == 'resnet_basic':
        dim = int(math.sqrt(in_channels * 4))
        return DCDSizes(2, dim, max(max(in_channels * 4, dim**2) // 16, 4))
    if layout == 'resnet_bottleneck':
        dim = int(math.sqrt(in_channels))
        return DCDSizes(1, dim, max(in_channels, dim**2) // 16)
    if layout == 'mobilenetv2':
        pool, reduction = (2, 8) if in_channels < out_channels else (1, 2)
        inputs = in_channels * pool**2
        dim = min(inputs // reduction, out_channels // reduction)
        while dim**2 > inputs * 2:
            reduction *= 2
            dim = min(inputs // reduction, out_channels // reduction)
        dim = max(dim, 4)
        return DCDSizes(pool, dim, max(max(inputs, dim**2) // fc_squeeze, 4))
    raise ValueError(f'DCD layout must be one of {DCD_LAYOUTS}, got '
                     f'{layout!r}')


def bn_affine(bn: nn.modules.batchnorm._BatchNorm
              ) -> Tuple[torch.Tensor, torch.Tensor]:
    """(a, c) of an eval-mode BatchNorm, BN(u) = a·u + c per channel."""
    a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return a, bn.bias - a * bn.running_mean


class DCDAttention(NamedTuple):
    """phi: Φ (B, L, L), the dynamic channel fusion; scale: Λ (B, C_out),
    the dynamic scale of the static kernel's output channels."""
    phi: torch.Tensor
    scale: torch.Tensor


class DCDGenerator(nn.Module):
    """KG of DCD: Φ = W_Φ h~ (L x L), Λ = hsigmoid(W_Λ h~), both linear maps
    without bias. DCD has no temperature.

    Shapes:
        h~: (B, A) -> alpha~ = cat[vec Φ, W_Λ h~]: (B, L² + C_out)
    """

    def __init__(self, hidden_dims: int, out_channels: int, dim: int):
        super().__init__()
        self.dim = dim
        self.phi = nn.Linear(hidden_dims, dim * dim, bias=False)
        self.scale = nn.Linear(hidden_dims, out_channels, bias=False)
        self.state_dims = dim * dim + out_channels

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.phi(hidden), self.scale(hidden)], dim=1)

    def activate(self, logits: torch.Tensor) -> DCDAttention:
        phi, scale = logits.split([self.dim * self.dim, logits.shape[1]
                                   - self.dim * self.dim], dim=1)
        return DCDAttention(phi.view(-1, self.dim, self.dim),
                            dcd_hard_sigmoid(scale))


class DCDConv2d(DynamicConvBase):
    """y = Λ ⊙ conv(X, W_0) + P (BN_2(Φ Z) + Z), Z = BN_1(Q^T X), per sample.

    DCD's dynamic convolution: the static kernel W_0 scaled per output
    channel by Λ(x), plus a dynamic channel fusion in an L-dimensional
    latent space: Q (1x1, C_in -> L, with the conv's stride) compresses X,
    Φ(x) (L x L) mixes the latent channels, P (1x1, L -> C_out) expands
    them. Λ and Φ come from :class:`DCDGenerator` on h~ = F(cat[d, h])
    (:class:`SqueezeExciteFusion`), h the input pooled to pool x pool. With
    ``kr_dims=0`` it is DCD as its authors' ``conv_basic_dy`` /
    ``conv_dy`` / ``DYModule`` compute it (``layout`` picks their sizes,
    :func:`dcd_sizes`). The static bias, where there is one, is added
    unscaled.

    Q^T X has the conv's output size only where the conv pads to keep it
    ('same' padding: 2·padding = dilation·(k - 1)); DCD has no grouped form.

    Execution (:meth:`rule_path`, or :attr:`path` as
    :class:`DynamicConvBase` sets it): ``'latent'``
    runs the latent path on feature maps, as the authors do (needed in
    training, where the norms use batch statistics); ``'merged'`` (eval
    mode, where it costs fewer multiply-adds: on large maps) folds it into
    one kernel per sample and runs one per-sample conv
    (:func:`per_sample_conv2d`). Both compute the same function.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias: as for :class:`torch.nn.Conv2d` (groups must be 1).
        layout (str): one of :data:`DCD_LAYOUTS`.
        fc_squeeze (int): A's divisor in the MobileNetV2 layout.
        padding_mode (str): 'zeros' only.
        kr_dims (int): D, the size of d; 0: plain DCD.
        generate_kr (bool): see :meth:`DynamicLayer.build_kr_generator`.

    Shapes:
        x: (B, C_in, H, W), d: (B, D) or None
        -> y: (B, C_out, H', W'), d_{i+1}: (B, D) or None
    """

    batch_folded_paths = ('merged', )

    def __init__(self, in_channels: int, out_channels: int, kernel_size,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = False, layout: str = 'resnet_basic',
                 fc_squeeze: int = 16, padding_mode: str = 'zeros',
                 kr_dims: int = 0, generate_kr: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, padding_mode, 'dcd',
                         kr_dims)
        if groups != 1:
            raise ValueError(
                f'DCD has no form for grouped convs (groups={groups}); keep '
                'them static (static_layers), as DCD\'s MobileNetV2 keeps '
                'its depthwise convs')
        if self.input_padding is not None or any(
                2 * p != dil * (k - 1) for p, dil, k in zip(
                    self.padding, self.dilation, self.kernel_size)):
            raise ValueError(
                f'DCD needs a zero-padded conv whose padding keeps the size '
                f'(2·padding = dilation·(k - 1)), got kernel '
                f'{self.kernel_size}, padding {padding}, dilation '
                f'{self.dilation}, padding_mode {padding_mode!r}')
        self.graph_path = 'latent'
        self.layout = layout
        self.sizes = dcd_sizes(in_channels, out_channels, layout, fc_squeeze)
        if self.sizes.squeeze < 1:
            raise ValueError(
                f'DCD layout {layout!r} gives {in_channels} input channels '
                'a squeeze width of 0 (its authors use it from 64 channels '
                'on)')
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        dim = self.sizes.dim
        self.q = nn.Conv2d(in_channels, dim, 1, self.stride, bias=False)
        self.p = nn.Conv2d(dim, out_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(dim)
        self.bn2 = nn.BatchNorm1d(dim)
        self.fusion = SqueezeExciteFusion(in_channels * self.sizes.pool**2,
                                          kr_dims, self.sizes.squeeze)
        self.generator = DCDGenerator(self.sizes.squeeze, out_channels, dim)
        self.build_kr_generator(generate_kr)
        self.reset_parameters()

    def reset_parameters(self):
        """DCD's initialisation in its authors' network of :attr:`layout`
        (liyunsheng13/dcd models/imagenet/): the convs W_0, Q and P
        N(0, 2 / (k²·C_out)) (Kaiming, fan_out; resnet_dcd.py line 267,
        mobilenetv2_dcd.py line 284), the norms γ = 1, β = 0, zero bias.
        The linear maps of F and KG (W_F, W_SE, W_Φ, W_Λ): N(0, 0.01) in
        the MobileNetV2 layout, whose loop draws every ``nn.Linear`` so
        (mobilenetv2_dcd.py line 291); PyTorch's default in the ResNet
        layouts, whose loop leaves them alone (resnet_dcd.py line 264). K
        by KR's rule (:meth:`KRGenerator.reset_parameters`)."""
        for conv in (self.weight, self.q.weight, self.p.weight):
            nn.init.kaiming_normal_(conv, mode='fan_out', nonlinearity='relu')
        self.bn1.reset_parameters()
        self.bn2.reset_parameters()
        for linear in (self.fusion.fc, self.fusion.se, self.generator.phi,
                       self.generator.scale):
            if self.layout == 'mobilenetv2':
                nn.init.normal_(linear.weight, 0, 0.01)
            else:
                linear.reset_parameters()
        if self.kr_generator is not None:
            self.kr_generator.reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def options_repr(self) -> str:
        return (f'pool={self.sizes.pool}, dim={self.sizes.dim}, '
                f'squeeze={self.sizes.squeeze}')

    def valid_paths(self) -> List[str]:
        """``'latent'``; ``'merged'`` too where the norms are in eval mode
        (fixed statistics) and the kernel has a centre tap (odd k)."""
        if self.bn1.training or self.bn2.training or not all(
                k % 2 for k in self.kernel_size):
            return ['latent']
        return ['latent', 'merged']

    def rule_path(self, height: int, width: int) -> str:
        """``'merged'`` where it is exact and costs fewer multiply-adds than
        the latent path on an ``height`` x ``width`` input, else
        ``'latent'``."""
        if 'merged' not in self.valid_paths():
            return 'latent'
        out_h, out_w = self.output_size(height, width)
        cin, cout, dim = self.in_channels, self.out_channels, self.sizes.dim
        latent = out_h * out_w * (cin * dim + dim * dim + dim * cout)
        merged = cout * dim * (dim + cin) + self.weight.numel()
        return 'merged' if merged < latent else 'latent'

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        pool = self.sizes.pool
        h = (x.mean(dim=(2, 3)) if pool == 1 else
             F.adaptive_avg_pool2d(x, pool).flatten(1))
        att, d_next = self.attend(h, d)
        return self.finish(self.run_path(x, att), x, self.bias), d_next

    def _forward_latent(self, x: torch.Tensor,
                        att: DCDAttention) -> torch.Tensor:
        """Λ ⊙ conv(X, W_0) + P (BN_2(Φ Z) + Z) on feature maps, as DCD's
        authors run it: exact in training, where the norms use batch
        statistics."""
        static = F.conv2d(x, self.weight, None, self.stride, self.padding,
                          self.dilation)
        out = static * att.scale[:, :, None, None].to(static.dtype)
        z = self.bn1(self.q(x))
        b, dim, height, width = z.shape
        z = z.flatten(2)
        z = self.bn2(torch.bmm(att.phi.to(z.dtype), z)) + z
        return out + self.p(z.reshape(b, dim, height, width))

    def merged(self, att: DCDAttention
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The layer with eval-mode norms, BN_i(u) = a_i u + c_i, as one
        kernel and one bias per sample: W(x) = Λ W_0 + P (a_2 Φ + I)
        diag(a_1) Q^T, the latent part at the kernel's centre tap (Q and P
        are 1x1 with the conv's stride), (B, C_out, C_in, kh, kw), and the
        bias P ((a_2 Φ + I) c_1 + c_2), (B, C_out)."""
        a1, c1 = bn_affine(self.bn1)
        a2, c2 = bn_affine(self.bn2)
        phi = att.phi.to(a1.dtype)
        mix = a2[:, None] * phi + torch.eye(
            self.sizes.dim, dtype=phi.dtype, device=phi.device)
        p = self.p.weight.flatten(1)
        latent = p @ mix @ (a1[:, None] * self.q.weight.flatten(1))
        kh, kw = self.kernel_size
        kernels = att.scale[:, :, None, None, None] * self.weight + F.pad(
            latent[..., None, None], (kw // 2, kw // 2, kh // 2, kh // 2))
        bias = (p @ (mix @ c1 + c2).unsqueeze(2)).squeeze(2)
        return kernels, bias

    def sample_kernels(self, att: DCDAttention) -> torch.Tensor:
        """The kernels of :meth:`merged`: those of eval mode."""
        return self.merged(att)[0]

    def _forward_merged(self, x: torch.Tensor,
                        att: DCDAttention) -> torch.Tensor:
        """One per-sample conv with the kernels and biases of
        :meth:`merged`: the latent path then costs O(C_out·L·(L + C_in))
        per sample instead of per pixel, as DCD's paper counts it."""
        kernels, bias = self.merged(att)
        dtype = conv_dtype(x)
        out = per_sample_conv2d(x.to(dtype), kernels.to(dtype).contiguous(),
                                list(self.stride), list(self.padding),
                                list(self.dilation), 1)
        return out + bias[:, :, None, None].to(out.dtype)


register_method(
    DynamicMethod(name='dcd', code=4, display_name='DCD',
                  layers={nn.Conv2d: DCDConv2d}))
