"""Dynamic linear layer with K candidate weights and the KR path."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dynamic_layer import MixingLayer
from .kernel_generator import KernelAttention, reset_mixing_attention


class DynamicLinear(MixingLayer):
    """y = f ⊙ ((c ⊙ x) · (Σ_k a_k W_k)^T) + Σ_k a_k b_k, per sample.

    The linear counterpart of :class:`DynamicConv2d`, for token MLPs,
    attention projections and the channels-last MLPs of ConvNeXt and its
    kin. The input is (B, *, C_in), any number of positions between the
    sample and the channels (tokens, or H and W); h is the input itself for
    (B, C_in) and else the mean over every position (docs/method.md). Where the
    layer is :attr:`batch_folded`, the rows are B*n, n windows, heads or
    tokens of each sample in a row (:meth:`samples_in`), and sample b's h
    and weights are those of all its n rows. c, f and a are the channel,
    filter and kernel attentions; there is no spatial one.

    Execution: the input is viewed as (B, P, C_in), P the positions of a
    sample. With one candidate, a static ``F.linear`` between the channel
    and filter scalings; with K candidates, the per-sample (C_out, C_in)
    weights are mixed in one matmul and applied by one batched matmul.

    Args:
        in_features, out_features, bias: as for :class:`torch.nn.Linear`.
        kernel_num (int): K, the number of candidate weights.
        method (str): 'odconv', 'dyconv' or 'condconv'.
        kr_dims (int): D, the size of d; 0 switches KR off.
        fusion_bias (bool): a bias in ODConv's F.
        **kwargs: the further options of
            :meth:`MixingLayer.build_mixing_attention`.

    Shapes:
        x: (B, *, C_in), d: (B, D) or None
        -> y: (B, *, C_out), d_{i+1}: (B, D) or None
    """

    def __init__(self, in_features: int, out_features: int,
                 bias: bool = True, kernel_num: int = 1,
                 method: str = 'odconv', kr_dims: int = 0,
                 fusion_bias: bool = True, **kwargs):
        super().__init__(in_features, out_features, method, kr_dims)
        # ViT's FFN initialiser sets the bias of every nn.Linear in it
        self.build_mixing_attention(1, kernel_num, method=method,
                                    fusion_bias=fusion_bias, **kwargs)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(
            torch.empty(kernel_num, out_features, in_features))
        self.bias = (nn.Parameter(torch.empty(kernel_num, out_features))
                     if bias else None)
        self.reset_parameters()

    def reset_parameters(self):
        """Each candidate drawn as a ViT linear is: truncated normal, std
        0.02, zero bias; F and KG by their method's rule
        (:func:`reset_mixing_attention`), K by KR's
        (:meth:`KRGenerator.reset_parameters`)."""
        nn.init.trunc_normal_(self.weight, std=0.02)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        reset_mixing_attention(self.fusion, self.generator)
        if self.kr_generator is not None:
            self.kr_generator.reset_parameters()

    def extra_repr(self) -> str:
        return (f'in_features={self.in_features}, '
                f'out_features={self.out_features}, '
                f'bias={self.bias is not None}, '
                f'kernel_num={self.kernel_num}, kr_dims={self.kr_dims}')

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        if x.dim() < 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f'DynamicLinear expects inputs of shape (B, *, '
                f'{self.in_features}), got {tuple(x.shape)}')
        tokens = x.reshape(self.samples_in(x.shape[0]), -1, self.in_features)
        att, d_next = self.attend(tokens.mean(dim=1), d)
        if att.channel is not None:
            tokens = tokens * att.channel.unsqueeze(1).to(tokens.dtype)
        if att.kernel is None:
            out = F.linear(tokens, self.weight[0])
            bias = None if self.bias is None else self.bias[0]
        else:
            weights = self._mixed_weights(att)
            out = torch.bmm(tokens, weights.transpose(1, 2).to(tokens.dtype))
            bias = None if self.bias is None else (
                att.kernel @ self.bias).unsqueeze(1)
        if att.filter is not None:
            out = out * att.filter.unsqueeze(1).to(out.dtype)
        if bias is not None:
            out = out + bias.to(out.dtype)
        return out.view(*x.shape[:-1], self.out_features), d_next

    def _mixed_weights(self, att: KernelAttention) -> torch.Tensor:
        """Σ_k a_k W_k, (B, C_out, C_in)."""
        return (att.kernel @ self.weight.flatten(1).to(att.kernel.dtype)
                ).view(-1, self.out_features, self.in_features)

    def sample_kernels(self, att: KernelAttention) -> torch.Tensor:
        """W_b, (B, C_out, C_in): f ⊙ c ⊙ Σ_k a_k W_k, with which the layer
        maps each of sample b's rows x to W_b x plus a bias."""
        batch = next(a for a in att if a is not None).shape[0]
        kernels = (self.weight[0].expand(batch, -1, -1)
                   if att.kernel is None else self._mixed_weights(att))
        if att.channel is not None:
            kernels = kernels * att.channel[:, None, :].to(kernels.dtype)
        if att.filter is not None:
            kernels = kernels * att.filter[:, :, None].to(kernels.dtype)
        return kernels

    @classmethod
    def from_static(cls, linear: nn.Linear, **kwargs) -> 'DynamicLinear':
        """A dynamic linear with ``linear``'s sizes and bias setting."""
        return cls(linear.in_features, linear.out_features,
                   linear.bias is not None, **kwargs)
