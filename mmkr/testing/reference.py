"""Slow references of the KR layers, written from the formulas.

One sample at a time: the attentions from explicit matrix products, each
sample's kernel W_b = f_b ⊙ Σ_k a_bk (s_b ⊙ W_k) ⊙ c_b built in full, then
``F.conv2d`` or a matmul. They share nothing with the fast layers but their
parameters, so the tests compare two independent computations.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _linear(x: Tensor, layer: torch.nn.Linear) -> Tensor:
    out = layer.weight @ x
    return out if layer.bias is None else out + layer.bias


def _norm(x: Tensor, norm: torch.nn.Module) -> Tensor:
    if isinstance(norm, torch.nn.LayerNorm):
        mean = x.mean()
        var = ((x - mean)**2).mean()
        return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    # BatchNorm in eval mode: running statistics, one sample at a time.
    assert not norm.training, 'the per-sample reference needs BN in eval mode'
    return ((x - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps)
            * norm.weight + norm.bias)


def reference_attention(layer, h: Tensor, d: Optional[Tensor]
                        ) -> Tuple[Dict[str, Tensor], Optional[Tensor]]:
    """One sample: h (C_in,), d (D,) -> attentions by head name, d_next (D,).

    h~ = ReLU(norm(W_F [d; h] + b_F)); logit_j = W_j h~ + b_j; attention_j =
    sigmoid(logit_j / T) (softmax for DyConv's kernel head);
    d_next = W_2 ReLU(LN(W_1 [h~; logits] + b_1)) + b_2.
    """
    fusion, generator = layer.fusion, layer.generator
    z = h if d is None else torch.cat([d, h])
    z = torch.relu(_norm(_linear(z, fusion.fc), fusion.norm))
    temperature = generator.temperature
    logits, att = [], {}
    for name, head in generator.heads.items():
        logit = _linear(z, head)
        logits.append(logit)
        if name == 'kernel' and generator.variant != 'condconv':
            att[name] = torch.exp(logit / temperature) / torch.exp(
                logit / temperature).sum()
        else:
            att[name] = 1 / (1 + torch.exp(-logit / temperature))
    d_next = None
    if layer.kr_generator is not None:
        krg = layer.kr_generator
        state = torch.cat([z] + logits)
        hidden = torch.relu(_norm(_linear(state, krg.fc1), krg.norm))
        d_next = _linear(hidden, krg.fc2)
    return att, d_next


def _sample_kernel(layer, att: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
    """W_b (C_out, C_in/g, ...) with every attention folded in, and b_b."""
    weight = layer.weight
    num = weight.size(0)
    a = att.get('kernel', torch.ones(num, dtype=weight.dtype))
    kernel = sum(a[k] * weight[k] for k in range(num))
    if 'spatial' in att:
        kernel = kernel * att['spatial'].view(weight.shape[-2:])
    in_per_group = weight.size(2)
    out_per_group = layer.out_channels // getattr(layer, 'groups', 1)
    if 'channel' in att:
        # output o of group g reads input channels g*C_in/g .. (g+1)*C_in/g
        group = torch.arange(layer.out_channels) // out_per_group
        index = group[:, None] * in_per_group + torch.arange(in_per_group)
        kernel = kernel * att['channel'][index].view(
            *index.shape, *([1] * (kernel.dim() - 2)))
    if 'filter' in att:
        kernel = kernel * att['filter'].view(-1, *([1] * (kernel.dim() - 1)))
    bias = torch.zeros(layer.out_channels, dtype=weight.dtype)
    if layer.bias is not None:
        bias = sum(a[k] * layer.bias[k] for k in range(num))
    return kernel, bias


def reference_dynamic_conv2d(layer, x: Tensor, d: Optional[Tensor] = None
                             ) -> Tuple[Tensor, Optional[Tensor]]:
    """x (B, C_in, H, W), d (B, D) -> y (B, C_out, H', W'), d_next (B, D).

    The bias is added after the filter attention (it is not scaled by it).
    """
    outs, d_nexts = [], []
    for b in range(x.size(0)):
        att, d_next = reference_attention(
            layer, x[b].mean(dim=(1, 2)), None if d is None else d[b])
        kernel, bias = _sample_kernel(layer, att)
        outs.append(
            F.conv2d(x[b:b + 1], kernel, bias, layer.stride, layer.padding,
                     layer.dilation, layer.groups))
        d_nexts.append(d_next)
    return torch.cat(outs), (None if d_nexts[0] is None else
                             torch.stack(d_nexts))


def reference_dynamic_linear(layer, x: Tensor, d: Optional[Tensor] = None
                             ) -> Tuple[Tensor, Optional[Tensor]]:
    """x (B, C_in) or (B, N, C_in), d (B, D) -> y, d_next (B, D)."""
    tokens = x if x.dim() == 3 else x.unsqueeze(1)
    outs, d_nexts = [], []
    for b in range(tokens.size(0)):
        att, d_next = reference_attention(layer, tokens[b].mean(dim=0),
                                          None if d is None else d[b])
        weight, bias = _sample_kernel(layer, att)
        outs.append(tokens[b] @ weight.t() + bias)
        d_nexts.append(d_next)
    out = torch.stack(outs)
    return (out if x.dim() == 3 else out.squeeze(1)), (
        None if d_nexts[0] is None else torch.stack(d_nexts))


def reference_odconv2d(layer, x: Tensor) -> Tensor:
    """ODConv (Li et al., ICLR 2022) as its authors' code computes it, with
    the batch folded into groups and BatchNorm over the batch:

    a = ReLU(BN(W_fc · GAP(x))); c, f, s = sigmoid(W_· a / T);
    k = softmax(W_k a / T); y = f ⊙ conv(c ⊙ x, Σ_k k_k (s ⊙ W_k)).

    ``layer`` must be a DynamicConv2d with ``kr_dims=0`` and ``norm='bn'``.
    """
    b, c, h, w = x.shape
    fusion, generator = layer.fusion, layer.generator
    # ODConv's fc has no bias; BatchNorm over the batch cancels ours.
    a = torch.relu(fusion.norm(x.mean(dim=(2, 3)) @ fusion.fc.weight.t()))
    heads, temperature = generator.heads, generator.temperature
    ones = torch.ones(b, 1, dtype=x.dtype)
    channel = torch.sigmoid(heads['channel'](a) / temperature)
    filt = (torch.sigmoid(heads['filter'](a) / temperature)
            if 'filter' in heads else ones)
    spatial = (torch.sigmoid(heads['spatial'](a) / temperature)
               if 'spatial' in heads else ones)
    kernel = (torch.softmax(heads['kernel'](a) / temperature, dim=1)
              if 'kernel' in heads else ones)
    kh, kw = layer.kernel_size
    weight = (spatial.view(b, 1, 1, 1, kh, kw) * kernel.view(b, -1, 1, 1, 1, 1)
              * layer.weight.unsqueeze(0)).sum(dim=1)
    out = F.conv2d((x * channel.view(b, c, 1, 1)).reshape(1, -1, h, w),
                   weight.reshape(-1, c // layer.groups, kh, kw), None,
                   layer.stride, layer.padding, layer.dilation,
                   layer.groups * b)
    out = out.view(b, layer.out_channels, *out.shape[-2:])
    return out * filt.view(b, -1, 1, 1)
