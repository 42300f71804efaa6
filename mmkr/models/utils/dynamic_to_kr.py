"""Start a KR model from a trained dynamic network of its method, e.g. an
ODConv or KernelWarehouse network converted from its authors' checkpoint
(:mod:`.authors_checkpoints`).

The KR model computes the source network's function at step 0:

- a layer dynamic in the source keeps all its tensors (candidates, F's
  fc and norm with its running statistics, the attention heads, T; KG and
  τ), and KernelWarehouse's warehouses are the source's; F's fc reads
  cat[d, h] in the KR model, and the columns that read d start at zero, so
  h~, and with it the layer's kernel, is the source's for any d;
- a layer static in the source (ODConv's shortcuts) starts as
  :func:`convert_static_to_kr` starts it: zero attention heads and
  candidates that sum to the static kernel;
- every K (the KR generators) and d_0's encoder keep the KR model's own
  initialisation, and the KR classifier's d_L columns start at zero: d
  flows through the network but reaches no output until training moves
  those zero columns.

The source and the KR model must share the method, K (KernelWarehouse:
the warehouse options) and F's norm (``attention_norm``): ODConv's networks
use 'bn'.
"""
from collections import OrderedDict
from typing import Dict, Optional

import torch
import torch.nn as nn

from ..backbones import KRBackbone
from ..layers import DynamicLayer
from .static_to_kr import convert_static_to_kr


def _static_name(key: str) -> str:
    """The name of a KR backbone's tensor in the static model it wraps."""
    prefix = 'backbone.backbone.'
    return f'backbone.{key[len(prefix):]}' if key.startswith(prefix) else key


def convert_dynamic_to_kr(
        source_state: Dict[str, torch.Tensor],
        kr_model: nn.Module,
        noise_std: float = 0.01,
        seed: Optional[int] = 0) -> 'OrderedDict[str, torch.Tensor]':
    """The state dict of ``kr_model`` that starts from ``source_state``, the
    state dict of an mmkr model of the same backbone without KR
    (``with_kr=False``). ``noise_std`` and ``seed``: as for
    :func:`convert_static_to_kr`, for the layers static in the source.

    Raises ``ValueError`` where a tensor of a source layer has no
    counterpart of its shape in the KR model.
    """
    backbone = next(m for m in kr_model.modules() if isinstance(m, KRBackbone))
    dynamic = [
        f'{name}.' for name, m in kr_model.named_modules() if
        isinstance(m, DynamicLayer) and f'{name}.method_code' in source_state
    ]
    # the static network under the source; its dynamic layers are filled
    # below
    static = {
        _static_name(key): value
        for key, value in source_state.items()
        if not any(key.startswith(layer) for layer in dynamic)
    }
    state = convert_static_to_kr(static, kr_model, noise_std, seed, dynamic)
    kr_dims = backbone.kr_dims
    for layer in dynamic:
        for key in [k for k in source_state if k.startswith(layer)]:
            value = source_state[key]
            if key == f'{layer}fusion.fc.weight' and kr_dims:
                value = torch.cat(
                    [value.new_zeros(len(value), kr_dims), value], dim=1)
            if key not in state or state[key].shape != value.shape:
                raise ValueError(
                    f'{key} of the source ({tuple(value.shape)}) has no '
                    'counterpart of that shape in the KR model (another '
                    'K, norm or method?)')
            state[key] = value.clone()
    return state
