"""The kernel-representation path of a KR layer: d_0, F and K of the poster.

Notation (poster): a KR layer i receives the kernel representation d_i and the
feature summary h_i = GAP(X_i). Representation Fusion mixes the two,
h~_i = F(cat[d_i, h_i]); the KR Generator hands the next layer
d_{i+1} = K(cat[h~_i, alpha~_i]), where alpha~_i is the kernel generator's state.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


def attention_hidden_dims(in_dims: int, reduction: float = 0.0625,
                          min_dims: int = 16) -> int:
    """Width A of the fused representation h~: ODConv's hidden width."""
    return max(int(in_dims * reduction), min_dims)


def with_kr(h: torch.Tensor, d: Optional[torch.Tensor],
            kr_dims: int) -> torch.Tensor:
    """cat[d, h] when the layer takes a kernel representation, else h."""
    if not kr_dims:
        return h
    if d is None:
        raise ValueError(
            f'this KR layer was built with kr_dims={kr_dims} but received no '
            'kernel representation d')
    return torch.cat([d.to(h.dtype), h], dim=1)


class AttentionBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the pooled features of a batch, refusing a training
    batch of one, where BatchNorm has no statistics to compute."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            raise ValueError(
                "attention_norm='bn' (BatchNorm in the attention branch, "
                "as ODConv's and KernelWarehouse's authors have it) needs "
                'training batches of more than 1 sample; '
                "attention_norm='ln' (LayerNorm) works with any batch size")
        return super().forward(x)


def create_norm1d(norm: str, num_features: int) -> nn.Module:
    """'ln': LayerNorm, works for any batch size (our default).
    'bn': BatchNorm1d, ODConv's original choice; needs batch > 1 in training.
    """
    if norm == 'ln':
        return nn.LayerNorm(num_features)
    if norm == 'bn':
        return AttentionBatchNorm(num_features)
    raise ValueError(f"norm must be 'ln' or 'bn', got {norm!r}")


class RepresentationFusion(nn.Module):
    """F: h~ = act(norm(W_F · cat[d, h] + b_F)).

    With ``kr_dims=0`` there is no d and F is the method's own squeeze
    layer on the pooled feature: ODConv's fc + norm + ReLU, DyConv's first
    FC + ReLU, WeightNet's reduction (an FC with bias, no activation).

    Args:
        in_dims (int): C, the size of the feature summary h.
        kr_dims (int): D, the size of d; 0 switches the KR input off.
        hidden_dims (int): A, the size of h~.
        norm (str, optional): 'ln', 'bn' or None, see :func:`create_norm1d`.
        bias (bool): b_F (ODConv's squeeze conv has none: a norm follows).
        act (bool): the ReLU.

    Shapes:
        h: (B, C), d: (B, D) or None -> h~: (B, A)
    """

    def __init__(self, in_dims: int, kr_dims: int, hidden_dims: int,
                 norm: Optional[str] = 'ln', bias: bool = True,
                 act: bool = True):
        super().__init__()
        self.kr_dims = kr_dims
        self.out_dims = hidden_dims
        self.fc = nn.Linear(kr_dims + in_dims, hidden_dims, bias=bias)
        self.norm = (create_norm1d(norm, hidden_dims)
                     if norm is not None else nn.Identity())
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()

    def forward(self, h: torch.Tensor, d=None) -> torch.Tensor:
        return self.act(self.norm(self.fc(with_kr(h, d, self.kr_dims))))


class ConcatFusion(nn.Module):
    """F for methods without an attention trunk (CondConv): h~ = cat[d, h],
    so the kernel generator reads h and d directly.

    Shapes:
        h: (B, C), d: (B, D) or None -> h~: (B, D + C)
    """

    def __init__(self, in_dims: int, kr_dims: int):
        super().__init__()
        self.kr_dims = kr_dims
        self.out_dims = kr_dims + in_dims

    def forward(self, h: torch.Tensor, d=None) -> torch.Tensor:
        return with_kr(h, d, self.kr_dims)


def dcd_hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """ReLU6(x + 3) / 3: DCD's gate. It divides by 3, not by 6 as MobileNetV3's
    hard sigmoid does, so it spans [0, 2] and is 1 at x = 0."""
    return F.relu6(x + 3.) / 3.


class SqueezeExciteFusion(nn.Module):
    """F of DCD: z = W_F · cat[d, h], h~ = z ⊙ hsigmoid(W_SE · z), both
    linear maps without bias (DCD's fc and its small SE module).

    Shapes:
        h: (B, C), d: (B, D) or None -> h~: (B, A)
    """

    def __init__(self, in_dims: int, kr_dims: int, hidden_dims: int):
        super().__init__()
        self.kr_dims = kr_dims
        self.out_dims = hidden_dims
        self.fc = nn.Linear(kr_dims + in_dims, hidden_dims, bias=False)
        self.se = nn.Linear(hidden_dims, hidden_dims, bias=False)

    def forward(self, h: torch.Tensor, d=None) -> torch.Tensor:
        z = self.fc(with_kr(h, d, self.kr_dims))
        return z * dcd_hard_sigmoid(self.se(z))


class KRGenerator(nn.Module):
    """K: d_{i+1} = W_2 · ReLU(LN(W_1 · cat[h~_i, alpha~_i] + b_1)) + b_2.

    Args:
        in_dims (int): A + L, the sizes of h~ and of the generator state.
        kr_dims (int): D, the size of d_{i+1}.

    Shapes:
        (B, A + L) -> (B, D)
    """

    def __init__(self, in_dims: int, kr_dims: int):
        super().__init__()
        self.fc1 = nn.Linear(in_dims, kr_dims)
        self.norm = nn.LayerNorm(kr_dims)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(kr_dims, kr_dims)

    def reset_parameters(self):
        """KR's rule: PyTorch's default, U(±1/√fan_in) weights and biases,
        whatever the network (docs/initialisation.md): LayerNorm fixes the
        scale of the hidden layer, and W_2 then gives every entry of d_{i+1}
        a variance of 1/3 at any width."""
        for module in (self.fc1, self.norm, self.fc2):
            module.reset_parameters()

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.norm(self.fc1(state))))


def low_frequency_spectrum(img: torch.Tensor, freq_size: int) -> torch.Tensor:
    """log(1 + |FFT2(img)|) over the lowest ``freq_size`` frequencies.

    The block keeps vertical frequencies -n/2 .. n/2-1 and horizontal
    frequencies 0 .. n/2 (n = ``freq_size``); the negative horizontal half is
    the complex conjugate of this one for a real image, so ``rfft2`` drops it.
    The transform runs in float32 whatever the autocast dtype: half-precision
    FFTs lose the small coefficients and need power-of-two sizes.

    Shapes:
        img: (B, C, H, W) -> (B, C, n, n // 2 + 1), float32 (float64 for float64 input)
    """
    half = freq_size // 2
    if img.dtype != torch.float64:
        img = img.float()
    with torch.autocast(img.device.type, enabled=False):
        spec = torch.fft.rfft2(img, norm='ortho')
        rows = torch.cat([spec[:, :, :half], spec[:, :, -half:]], dim=2)
        return torch.log1p(rows[..., :half + 1].abs())


class SpectralKREncoder(nn.Module):
    """d_0: the input image's low-frequency spectrum projected to D.

    d_0 = W_0 · vec(log(1 + |FFT2(img)|)[low frequencies]) (see
    :func:`low_frequency_spectrum`), followed by LayerNorm so that d_0 has
    the scale of the d_i that the KR generators produce.

    Args:
        kr_dims (int): D.
        in_channels (int): image channels C.
        freq_size (int): n, the side of the low-frequency block.

    Shapes:
        img: (B, C, H, W) with H, W >= n -> d_0: (B, D)
    """

    def __init__(self, kr_dims: int, in_channels: int = 3,
                 freq_size: int = 8):
        super().__init__()
        if freq_size < 2 or freq_size % 2:
            raise ValueError(f'freq_size must be even and >= 2, got {freq_size}')
        self.in_channels = in_channels
        self.freq_size = freq_size
        num_freqs = in_channels * freq_size * (freq_size // 2 + 1)
        self.proj = nn.Linear(num_freqs, kr_dims)
        self.norm = nn.LayerNorm(kr_dims)

    def reset_parameters(self):
        """KR's rule: PyTorch's default for W_0, whatever the network
        (docs/initialisation.md); the LayerNorm sets the scale of d_0."""
        self.proj.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.dim() != 4 or img.size(1) != self.in_channels:
            raise ValueError(
                f'SpectralKREncoder expects images of shape (B, '
                f'{self.in_channels}, H, W), got {tuple(img.shape)}')
        if min(img.shape[-2:]) < self.freq_size:
            raise ValueError(
                f'images of size {tuple(img.shape[-2:])} are smaller than '
                f'the {self.freq_size}x{self.freq_size} frequency block')
        spec = low_frequency_spectrum(img, self.freq_size).flatten(1)
        return self.norm(self.proj(spec.to(self.proj.weight.dtype)))
