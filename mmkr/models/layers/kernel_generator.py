"""Kernel Generator (KG): the attentions alpha_i that turn K candidate kernels
into one kernel per sample, W_i = G(alpha_i)."""
from typing import NamedTuple, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

ATTENTION_VARIANTS = ('odconv', 'dyconv', 'condconv')


class KernelAttention(NamedTuple):
    """Activated attentions of one batch; a head that does not exist is None.

    channel: (B, C_in), filter: (B, C_out), spatial: (B, k*k), kernel: (B, K)
    """
    channel: Optional[torch.Tensor]
    filter: Optional[torch.Tensor]
    spatial: Optional[torch.Tensor]
    kernel: Optional[torch.Tensor]


class KernelGenerator(nn.Module):
    """alpha = heads(h~): per-sample attentions over K candidate kernels.

    ``variant='odconv'`` has ODConv's four heads, each a linear layer on h~
    whose logits are divided by the temperature T:

    - channel: sigmoid, one weight per input channel;
    - filter: sigmoid, one weight per output channel (none for a depthwise
      conv, where it would duplicate the channel head);
    - spatial: sigmoid, one weight per kernel position (none for k = 1);
    - kernel: softmax over the K candidates (none for K = 1).

    ``'dyconv'`` keeps the softmax kernel head alone (DyConv), ``'condconv'``
    a sigmoid kernel head alone (CondConv's routing).

    The generator state alpha~ handed to the KR generator is the concatenation
    of the heads' logits before the temperature, so that annealing T does not
    change what the next layer sees.

    Args:
        hidden_dims (int): A, the size of h~.
        in_channels (int): C_in.
        out_channels (int): C_out.
        kernel_positions (int): k*k (1 for a linear layer or a 1x1 conv).
        kernel_num (int): K.
        depthwise (bool): no filter head.
        variant (str): one of ``ATTENTION_VARIANTS``.

    Shapes:
        h~: (B, A) -> logits alpha~: (B, L), L = :attr:`state_dims`
    """

    def __init__(self, hidden_dims: int, in_channels: int, out_channels: int,
                 kernel_positions: int = 1, kernel_num: int = 1,
                 depthwise: bool = False, variant: str = 'odconv'):
        super().__init__()
        if variant not in ATTENTION_VARIANTS:
            raise ValueError(f'attention variant must be one of '
                             f'{ATTENTION_VARIANTS}, got {variant!r}')
        if variant != 'odconv' and kernel_num < 2:
            raise ValueError(f'{variant} mixes candidate kernels and needs '
                             f'kernel_num >= 2, got {kernel_num}')
        self.variant = variant
        odconv = variant == 'odconv'
        sizes = dict(
            channel=in_channels if odconv else 0,
            filter=out_channels if odconv and not depthwise else 0,
            spatial=kernel_positions if odconv and kernel_positions > 1 else 0,
            kernel=kernel_num if kernel_num > 1 else 0)
        self.head_sizes = sizes
        self.heads = nn.ModuleDict({
            name: nn.Linear(hidden_dims, size)
            for name, size in sizes.items() if size
        })
        self.register_buffer('temperature', torch.tensor(1.0))
        self.reset_parameters()

    @property
    def state_dims(self) -> int:
        """L, the size of the generator state alpha~."""
        return sum(self.head_sizes.values())

    def reset_parameters(self):
        """ODConv's initialisation: Kaiming (fan_out) weights, zero biases."""
        for head in self.heads.values():
            nn.init.kaiming_normal_(
                head.weight, mode='fan_out', nonlinearity='relu')
            nn.init.zeros_(head.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(hidden) for head in self.heads.values()], 1)

    def activate(self, logits: torch.Tensor) -> KernelAttention:
        """alpha~ (B, L) -> :class:`KernelAttention`, in float32 under AMP."""
        with torch.autocast(logits.device.type, enabled=False):
            if logits.dtype in (torch.float16, torch.bfloat16):
                logits = logits.float()
            scaled = logits / self.temperature.to(logits.dtype)
            parts = dict(zip(self.heads.keys(),
                             scaled.split(list(
                                 h.out_features
                                 for h in self.heads.values()), dim=1)))
            att = {
                name: torch.sigmoid(part)
                for name, part in parts.items() if name != 'kernel'
            }
            if 'kernel' in parts:
                att['kernel'] = (
                    torch.sigmoid(parts['kernel']) if self.variant
                    == 'condconv' else F.softmax(parts['kernel'], dim=1))
        return KernelAttention(**{
            name: att.get(name)
            for name in KernelAttention._fields
        })
