"""Kernel Generator (KG) of the candidate-mixing methods: the attentions
alpha_i that turn K candidate kernels into one kernel per sample,
W_i = G(alpha_i), for ODConv, DyConv and CondConv."""
import math
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .representation import (ConcatFusion, RepresentationFusion,
                             attention_hidden_dims)

MIXING_METHODS = ('odconv', 'dyconv', 'condconv')


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

    ``method='odconv'`` has ODConv's four heads, each a linear layer on h~
    whose logits are divided by the temperature T:

    - channel: sigmoid, one weight per input channel;
    - filter: sigmoid, one weight per output channel (none for a depthwise
      conv, where it would duplicate the channel head);
    - spatial: sigmoid, one weight per kernel position (none for k = 1);
    - kernel: softmax over the K candidates (none for K = 1).

    ``'dyconv'`` keeps the softmax kernel head alone, divided by T
    (DyConv); ``'condconv'`` a sigmoid kernel head alone without a
    temperature (CondConv's routing, which its paper does not anneal).
    Only the generators with a temperature have the buffer
    :attr:`temperature`, which :class:`~mmkr.engine.KRTemperatureHook`
    anneals.

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
        method (str): one of :data:`MIXING_METHODS`.

    Shapes:
        h~: (B, A) -> logits alpha~: (B, L), L = :attr:`state_dims`
    """

    def __init__(self, hidden_dims: int, in_channels: int, out_channels: int,
                 kernel_positions: int = 1, kernel_num: int = 1,
                 depthwise: bool = False, method: str = 'odconv'):
        super().__init__()
        if method not in MIXING_METHODS:
            raise ValueError(f'KernelGenerator mixes candidate kernels for '
                             f'{MIXING_METHODS}, got method={method!r}')
        if method != 'odconv' and kernel_num < 2:
            raise ValueError(f'{method} mixes candidate kernels and needs '
                             f'kernel_num >= 2, got {kernel_num}')
        self.method = method
        odconv = method == 'odconv'
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
        if method != 'condconv':
            self.register_buffer('temperature', torch.tensor(1.0))
        self.reset_parameters()

    @property
    def state_dims(self) -> int:
        """L, the size of the generator state alpha~."""
        return sum(self.head_sizes.values())

    def reset_parameters(self):
        """Each head drawn by its method's authors' rule
        (:func:`init_attention_linear`)."""
        for head in self.heads.values():
            init_attention_linear(head, self.method)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.cat([head(hidden) for head in self.heads.values()], 1)

    def activate(self, logits: torch.Tensor) -> KernelAttention:
        """alpha~ (B, L) -> :class:`KernelAttention`, in float32 under AMP."""
        with torch.autocast(logits.device.type, enabled=False):
            if logits.dtype in (torch.float16, torch.bfloat16):
                logits = logits.float()
            if hasattr(self, 'temperature'):
                logits = logits / self.temperature.to(logits.dtype)
            parts = dict(zip(self.heads.keys(),
                             logits.split(list(
                                 h.out_features
                                 for h in self.heads.values()), dim=1)))
            att = {
                name: torch.sigmoid(part)
                for name, part in parts.items() if name != 'kernel'
            }
            if 'kernel' in parts:
                att['kernel'] = (
                    torch.sigmoid(parts['kernel']) if self.method
                    == 'condconv' else F.softmax(parts['kernel'], dim=1))
        return KernelAttention(**{
            name: att.get(name)
            for name in KernelAttention._fields
        })


def init_attention_linear(linear: nn.Linear, method: str) -> None:
    """Draw a linear map of a candidate-mixing attention (F's fc or a head of
    KG) as the method's authors draw it:

    - ``'odconv'``: Kaiming normal, fan_out, ReLU gain: N(0, 2 / C_out),
      zero bias. ODConv's attention is 1x1 convs, drawn so by
      ``Attention._initialize_weights`` (OSVAI/ODConv modules/odconv.py,
      line 46) and again by ``OD_ResNet`` / ``OD_MobileNetV2``'s loop over
      every ``nn.Conv2d`` (models/od_resnet.py line 105,
      models/od_mobilenetv2.py line 152);
    - ``'dyconv'``: ODConv's rule. DyConv has no authors' code; its
      attention is ODConv's kernel head behind an FC + ReLU trunk, drawn
      alike so that the two rows differ in their attentions only;
    - ``'condconv'``: U(±1/√(fan_in + fan_out)), zero bias: timm's
      ``_init_weight_goog`` for the ``routing_fn`` of every
      EfficientNet-CondConv (timm/models/_efficientnet_builder.py), std
      1/√(3·(C_in + K)); with KR, fan_in counts d too.
    """
    if method == 'condconv':
        bound = 1 / math.sqrt(linear.in_features + linear.out_features)
        nn.init.uniform_(linear.weight, -bound, bound)
    else:
        nn.init.kaiming_normal_(linear.weight, mode='fan_out',
                                nonlinearity='relu')
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


def reset_mixing_attention(fusion: nn.Module,
                           generator: KernelGenerator) -> None:
    """F and KG of a candidate-mixing layer by their method's rule
    (:func:`init_attention_linear`); F's norm γ = 1, β = 0, as ODConv's
    attention BatchNorm. CondConv's F has no parameters."""
    if isinstance(fusion, RepresentationFusion):
        init_attention_linear(fusion.fc, generator.method)
        if not isinstance(fusion.norm, nn.Identity):
            fusion.norm.reset_parameters()
    generator.reset_parameters()


def mixing_attention(method: str, in_channels: int, out_channels: int,
                     kernel_positions: int, kernel_num: int,
                     depthwise: bool, kr_dims: int,
                     reduction: Optional[float], norm: str,
                     odconv_fusion_bias: bool = False
                     ) -> Tuple[nn.Module, KernelGenerator]:
    """(F, KG) of a candidate-mixing method, each as its authors built it:

    - ODConv: F = fc without bias (ODConv's 1x1 squeeze conv) + norm + ReLU
      to A = max(C_in * reduction, 16), reduction 1/16. A dynamic linear
      layer keeps a bias (``odconv_fusion_bias``): transformers' own
      initialisers set the bias of every ``nn.Linear`` in their MLPs;
    - DyConv: F = FC + ReLU to A = max(C_in * reduction, 4), reduction 1/4
      (the paper's squeeze ratio 4), no norm;
    - CondConv: no trunk, the routing FC reads h (with KR: cat[d, h]).
    """
    if method == 'odconv':
        hidden = attention_hidden_dims(in_channels, reduction or 0.0625, 16)
        fusion = RepresentationFusion(in_channels, kr_dims, hidden, norm,
                                      bias=odconv_fusion_bias)
    elif method == 'dyconv':
        hidden = attention_hidden_dims(in_channels, reduction or 0.25, 4)
        fusion = RepresentationFusion(in_channels, kr_dims, hidden, None)
    elif method == 'condconv':
        fusion = ConcatFusion(in_channels, kr_dims)
    else:
        raise ValueError(f'method must be one of {MIXING_METHODS} for '
                         f'candidate mixing, got {method!r}')
    return fusion, KernelGenerator(fusion.out_dims, in_channels,
                                   out_channels, kernel_positions, kernel_num,
                                   depthwise, method)
