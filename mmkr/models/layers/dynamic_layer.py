"""What the dynamic convolution and the dynamic linear layer share: the
attention path h -> h~ -> (alpha, d_{i+1}) and the hand-over of d."""
from typing import Optional, Tuple

import torch
import torch.nn as nn

from .kernel_generator import KernelAttention, KernelGenerator
from .representation import (KRGenerator, RepresentationFusion,
                             attention_hidden_dims)


class KRChain:
    """Carries the kernel representation d from one KR layer to the next
    during one forward pass of a network.

    Every dynamic layer of a network holds the same chain: a layer reads d_i
    from it and writes d_{i+1} back, so d follows the order in which the
    layers actually run.
    """
    __slots__ = ('d', )

    def __init__(self):
        self.d: Optional[torch.Tensor] = None


class DynamicLayer(nn.Module):
    """Base of the KR layers: h~ = F(cat[d, h]), alpha = KG(h~),
    d_{i+1} = K(cat[h~, alpha~]).

    Subclasses compute the feature summary h from their input and apply the
    attentions in :meth:`forward_kr`.

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_positions (int): k*k of the candidate kernels.
        kernel_num (int): K, the number of candidate kernels.
        depthwise (bool): a depthwise conv has no filter attention.
        reduction (float): A = max(C_in * reduction, 16).
        kr_dims (int): D, the size of d; 0 switches KR off (ODConv, DyConv or
            CondConv, depending on ``attention``).
        generate_kr (bool): build the KR generator K that hands d_{i+1} on.
            The last KR layer of a network whose d_L nobody reads has none,
            so that no parameter goes without a gradient.
        attention (str): 'odconv', 'dyconv' or 'condconv', see
            :class:`KernelGenerator`.
        norm (str): the norm of F, 'ln' (any batch size) or 'bn' (ODConv's).
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_positions: int, kernel_num: int = 1,
                 depthwise: bool = False, reduction: float = 0.0625,
                 kr_dims: int = 0, generate_kr: bool = True,
                 attention: str = 'odconv', norm: str = 'ln'):
        super().__init__()
        if kernel_num < 1:
            raise ValueError(f'kernel_num must be >= 1, got {kernel_num}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_num = kernel_num
        self.kr_dims = kr_dims
        hidden_dims = attention_hidden_dims(in_channels, reduction)
        self.fusion = RepresentationFusion(in_channels, kr_dims, hidden_dims,
                                           norm)
        self.generator = KernelGenerator(hidden_dims, in_channels,
                                         out_channels, kernel_positions,
                                         kernel_num, depthwise, attention)
        self.kr_generator = (
            KRGenerator(hidden_dims + self.generator.state_dims, kr_dims)
            if kr_dims and generate_kr else None)
        self.chain: Optional[KRChain] = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # PyTorch reports a shape mismatch as one entry in a list that
        # mmengine's non-strict loading only logs; a checkpoint with other
        # kernels would then run with this layer's random ones.
        for name, tensor in self.state_dict().items():
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != tensor.shape:
                raise ValueError(
                    f'checkpoint does not match dynamic layer '
                    f'{prefix.rstrip(".")!r} ({type(self).__name__}, '
                    f'kernel_num={self.kernel_num}, kr_dims={self.kr_dims}): '
                    f'{prefix + name} has shape {tuple(saved.shape)} in the '
                    f'checkpoint and {tuple(tensor.shape)} in the model')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def attend(self, h: torch.Tensor, d: Optional[torch.Tensor] = None
               ) -> Tuple[KernelAttention, Optional[torch.Tensor]]:
        """h (B, C_in), d (B, D) -> attentions alpha and d_{i+1} (B, D)."""
        fused = self.fusion(h, d)
        logits = self.generator(fused)
        d_next = None
        if self.kr_generator is not None:
            d_next = self.kr_generator(torch.cat([fused, logits], dim=1))
        return self.generator.activate(logits), d_next

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x, d_i -> output, d_{i+1}."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Drop-in for the static layer: d comes from and goes to the chain."""
        if self.chain is None:
            return self.forward_kr(x)[0]
        out, self.chain.d = self.forward_kr(x, self.chain.d)
        return out
