"""Start a KR model from a static (mmpretrain) checkpoint.

The converted KR model computes the static model's function at step 0:

- every attention head of every dynamic layer gets zero weights and biases,
  so its logits are 0 for any input and any temperature T: the channel,
  filter and spatial attentions are sigmoid(0) = 1/2 and the kernel
  attention is softmax(0) = 1/K (CondConv's sigmoid: 1/2 each);
- each candidate kernel W_k is the static kernel W divided by the product
  of those constants, c * f * s * sum_k(a_k), so that
  f * conv(c * X, sum_k a_k (s * W_k)) = conv(X, W); the bias candidates are
  b / sum_k(a_k). The constants are powers of two for ODConv and DyConv, so
  the rescaling is exact in floating point;
- a small zero-mean perturbation across the K candidates (``noise_std``)
  leaves sum_k a_k W_k unchanged at a = 1/K but lets the candidates, and the
  kernel attention that mixes them, receive different gradients; with equal
  candidates the kernel head's gradient is exactly zero and K candidates
  would train as one;
- the KR classifier's d_L columns start at zero, so the logits depend on the
  pooled feature alone, as in the static model;
- T is set to 1: fine-tuning needs no annealing (the heads start at zero);
- d_0's encoder, F and K keep the KR model's own initialisation: with zero
  heads they do not change the output.
"""
from collections import OrderedDict
from typing import Collection, Dict, Optional, Tuple

import torch
import torch.nn as nn

from ..backbones import KRBackbone
from ..heads import KRLinearClsHead
from ..layers import DynamicLayer, MixingLayer


def neutral_factors(layer: DynamicLayer) -> Tuple[float, float]:
    """(weight factor, bias factor) of ``layer`` when every attention logit
    is 0: with equal candidates W_k = W', b_k = b' the layer computes
    conv(X, weight_factor * W') + bias_factor * b'."""
    generator = layer.generator
    att = generator.activate(torch.zeros(1, generator.state_dims))
    weight_factor = bias_factor = 1.
    for name in ('channel', 'filter', 'spatial'):
        value = getattr(att, name)
        if value is not None:
            weight_factor *= float(value[0, 0])
    if att.kernel is not None:
        bias_factor = float(att.kernel.sum())
        weight_factor *= bias_factor
    return weight_factor, bias_factor


def _candidates(static: torch.Tensor, kernel_num: int, factor: float,
                noise_std: float, rng: Optional[torch.Generator]
                ) -> torch.Tensor:
    """(K, *static.shape): static / factor plus zero-mean noise over K."""
    base = (static / factor).unsqueeze(0).repeat(
        kernel_num, *([1] * static.dim()))
    if noise_std > 0 and kernel_num > 1:
        noise = torch.randn(base.shape, generator=rng, dtype=base.dtype)
        noise = noise - noise.mean(dim=0, keepdim=True)
        base = base + noise * noise_std * base[0].std()
    return base


def _classifier_key(static_state: Dict[str, torch.Tensor], head: str,
                    out_features: int) -> str:
    """The static head's final linear weight: the one 2D weight under
    ``head`` with ``out_features`` rows."""
    keys = [
        k for k, v in static_state.items() if k.startswith(f'{head}.')
        and k.endswith('.weight') and v.dim() == 2 and v.size(0) ==
        out_features
    ]
    if len(keys) != 1:
        raise ValueError(
            f'cannot find the static classifier of {head!r}: expected one 2D '
            f'weight with {out_features} rows under {head}., found {keys}')
    return keys[0]


def convert_static_to_kr(static_state: Dict[str, torch.Tensor],
                         kr_model: nn.Module,
                         noise_std: float = 0.01,
                         seed: Optional[int] = 0,
                         keep_layers: Collection[str] = ()
                         ) -> 'OrderedDict[str, torch.Tensor]':
    """The state dict of ``kr_model`` that starts from ``static_state``.

    Args:
        static_state: state dict of the static model (e.g. mmpretrain's
            ``ImageClassifier`` with a ResNet or VisionTransformer); the KR
            backbone at ``<name>`` reads the static backbone at ``<name>``.
        kr_model: the KR model, initialised; its KR-only tensors (d_0
            encoder, F, K) are kept.
        noise_std: std of the zero-mean perturbation of the candidates,
            relative to the std of the static kernel (see module doc).
        seed: seed of that perturbation (None: torch's global generator).
        keep_layers: dynamic layers of the KR model (``'name.'``) that keep
            the KR model's tensors, for the caller to fill
            (:func:`~.dynamic_to_kr.convert_dynamic_to_kr`); the static
            checkpoint has nothing for them.

    Raises ``ValueError`` naming every static tensor that has no place in the
    KR model and every KR tensor that has no static counterpart.
    """
    rng = torch.Generator().manual_seed(seed) if seed is not None else None
    state = OrderedDict(
        (k, v.detach().clone()) for k, v in kr_model.state_dict().items())
    used = set()

    def take(static_key: str, kr_key: str) -> torch.Tensor:
        if static_key not in static_state:
            raise ValueError(
                f'the static checkpoint has no {static_key} for {kr_key}')
        used.add(static_key)
        return static_state[static_key].to(state[kr_key].dtype)

    kr_only, static_of = set(), {}
    for name, module in kr_model.named_modules():
        prefix = f'{name}.' if name else ''
        if isinstance(module, KRBackbone):
            kr_only.update(k for k in state
                           if k.startswith(f'{prefix}encoder.'))
            for key in state:
                if key.startswith(f'{prefix}backbone.'):
                    static_of[key] = prefix + key[len(f'{prefix}backbone.'):]
        if isinstance(module, DynamicLayer) and prefix in keep_layers:
            kr_only.update(k for k in state if k.startswith(prefix))
        elif isinstance(module, DynamicLayer):
            _convert_layer(module, prefix, state, static_of, take, kr_only,
                           noise_std, rng)
        if isinstance(module, KRLinearClsHead):
            weight = f'{prefix}fc.weight'
            static_key = _classifier_key(static_state, name,
                                         module.num_classes)
            static = take(static_key, weight)
            state[weight].zero_()
            state[weight][:, :static.size(1)] = static
            bias = f'{prefix}fc.bias'
            if bias in state:
                state[bias] = take(static_key[:-len('weight')] + 'bias', bias)
            kr_only.update((weight, bias))

    for key in state:
        if key in kr_only:
            continue
        static = take(static_of.get(key, key), key)
        if static.shape != state[key].shape:
            raise ValueError(
                f'{key} has shape {tuple(state[key].shape)} in the KR model '
                f'and {tuple(static.shape)} in the static checkpoint')
        state[key] = static.clone()
    unused = sorted(set(static_state) - used)
    if unused:
        raise ValueError(
            f'{len(unused)} tensors of the static checkpoint have no place in '
            f'the KR model (another architecture?): {unused[:5]}')
    return state


def _convert_layer(layer: DynamicLayer, prefix: str, state: dict,
                   static_of: dict, take, kr_only: set, noise_std: float,
                   rng: Optional[torch.Generator]) -> None:
    """Candidates from the static kernel, neutral heads, T = 1; marks the
    layer's tensors as done."""
    if not isinstance(layer, MixingLayer):
        raise ValueError(
            f'{prefix.rstrip(".")} is a {layer.method} layer; a static '
            'checkpoint converts into candidate-mixing layers (odconv, '
            'dyconv, condconv) only')
    weight_factor, bias_factor = neutral_factors(layer)
    for key in [k for k in state if k.startswith(prefix)]:
        local = key[len(prefix):]
        if local in ('weight', 'bias'):
            static = take(static_of.get(key, key), key)
            if static.shape != state[key].shape[1:]:
                raise ValueError(
                    f'{key} holds {layer.kernel_num} candidates of shape '
                    f'{tuple(state[key].shape[1:])} in the KR model; the '
                    f'static checkpoint has {tuple(static.shape)}')
        if local == 'weight':
            state[key] = _candidates(static, layer.kernel_num, weight_factor,
                                     noise_std, rng)
        elif local == 'bias':
            state[key] = _candidates(static, layer.kernel_num, bias_factor,
                                     0., rng)
        elif local.startswith('generator.heads.'):
            state[key].zero_()
        elif local == 'generator.temperature':
            state[key].fill_(1.)
        kr_only.add(key)
