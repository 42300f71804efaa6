"""Refuse checkpoints that do not fit a KR backbone, before loading them.

mmengine loads non-strictly: missing and unexpected keys and shape mismatches
are only logged, and the model then runs with random KR weights. The
load-state-dict pre-hooks below raise instead, naming what is wrong. Each
dynamic layer first compares its shapes itself
(:meth:`DynamicLayer._load_from_state_dict`: kernel_num, kr_dims), then its
hook checks its keys; the backbone's hook checks everything outside the
dynamic layers (stem, norms, the d_0 encoder).
"""
import logging
from typing import Iterable, List

import torch.nn as nn
from mmengine.logging import print_log


def _sample(keys: List[str], limit: int = 5) -> str:
    more = f' and {len(keys) - limit} more' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def _check_keys(where: str, own: Iterable[str], given: Iterable[str],
                optional: tuple = (), hint: str = '',
                may_lack: tuple = ()) -> None:
    """Raises ``ValueError`` if ``given`` lacks a key of ``own`` (BatchNorm's
    ``num_batches_tracked``, a dynamic layer's ``method_code``, which
    checkpoints saved before layers recorded their method lack, and keys
    starting with a ``may_lack`` prefix aside) or has one that is not in
    ``own`` and does not start with an ``optional`` prefix."""
    own, given = set(own), set(given)
    missing = sorted(k for k in own - given
                     if not k.endswith(('num_batches_tracked', 'method_code'))
                     and not k.startswith(may_lack))
    if missing:
        raise ValueError(
            f'checkpoint does not fit {where}: it lacks {len(missing)} of its '
            f'{len(own)} tensors ({_sample(missing)}).{hint}')
    unexpected = sorted(k for k in given - own if not k.startswith(optional))
    if unexpected:
        raise ValueError(
            f'checkpoint does not fit {where}: it has {len(unexpected)} '
            f'tensors that {where} lacks ({_sample(unexpected)}); it was '
            'saved from another architecture (backbone, depth or attention).')


def check_layer_state_dict(layer: nn.Module, state_dict: dict, prefix: str,
                           *args) -> None:
    """Pre-hook of a dynamic layer in a :class:`KRBackbone`: the layer's
    tensors are all there and nothing else is. A KR generator that this
    layer does not build (the last layer of a detection or segmentation
    backbone) may be in the checkpoint: a classification checkpoint has it."""
    _check_keys(
        f'dynamic layer {prefix.rstrip(".")!r}',
        layer.state_dict(prefix=prefix, keep_vars=True),
        (k for k in state_dict if k.startswith(prefix)),
        optional=(f'{prefix}kr_generator.', )
        if layer.kr_generator is None else ())


def output_norms(backbone: nn.Module, prefix: str = '') -> List[str]:
    """The norms of a backbone's outputs, ``norm{i}`` for i in its
    ``out_indices`` (ConvNeXt, Swin and their kin)."""
    return [
        f'{prefix}norm{i}.' for i in getattr(backbone, 'out_indices', ())
        if isinstance(getattr(backbone, f'norm{i}', None), nn.Module)
    ]


def check_kr_state_dict(backbone: nn.Module, state_dict: dict, prefix: str,
                        *args) -> None:
    """Pre-hook of :class:`KRBackbone`: its tensors outside the dynamic
    layers (stem, norms, d_0 encoder) are all there, with their shapes, and
    nothing else is. A checkpoint without any kernel generator is a static
    one and needs converting first. A checkpoint of another method is
    named as such first: its other tensors (a method's network state) would
    otherwise read as another architecture. The norms of outputs that the
    checkpoint's model did not have (a classifier's checkpoint in a
    detection backbone with more ``out_indices``) start from their
    initialisation, as in MMDetection, and are logged."""
    for name, layer in backbone.dynamic_layers.items():
        layer.check_method_code(state_dict, f'{prefix}backbone.{name}.')
    layers = tuple(f'{prefix}backbone.{name}.'
                   for name in backbone.dynamic_names)
    own = {
        k: v
        for k, v in backbone.state_dict(prefix=prefix, keep_vars=True).items()
        if not k.startswith(layers)
    }
    given = [
        k for k in state_dict
        if k.startswith(prefix) and not k.startswith(layers)
    ]
    where = f'KRBackbone {prefix.rstrip(".")!r}' if prefix else 'KRBackbone'
    hint = ''
    if not any('.generator.' in k for k in state_dict
               if k.startswith(prefix)):
        hint = (' It has no kernel generator at all: a static checkpoint '
                'must first be converted with '
                'tools/model_converters/static_to_kr.py.')
    norms = tuple(output_norms(backbone.backbone, f'{prefix}backbone.'))
    _check_keys(where, own, given, hint=hint, may_lack=norms)
    fresh = sorted({
        norm for norm in norms for k in own
        if k.startswith(norm) and k not in state_dict
    })
    if fresh:
        print_log(
            f'{where}: the checkpoint has no output norms {fresh}; they start '
            'from their initialisation', logger='current',
            level=logging.INFO)
    for key, tensor in own.items():
        if key in state_dict and state_dict[key].shape != tensor.shape:
            # only the d_0 encoder's shapes depend on kr_dims
            cause = (f'kr_dims={backbone.kr_dims} in the model'
                     if key.startswith(f'{prefix}encoder.') else
                     'it was saved from a backbone of another width or '
                     'architecture')
            raise ValueError(
                f'checkpoint does not fit {where}: {key} has shape '
                f'{tuple(state_dict[key].shape)} in the checkpoint and '
                f'{tuple(tensor.shape)} in the model ({cause}).')


def register_state_dict_checks(backbone: nn.Module) -> None:
    """Install the checks above on ``backbone`` and its dynamic layers."""
    backbone.register_load_state_dict_pre_hook(check_kr_state_dict)
    for layer in backbone.dynamic_layers.values():
        layer.register_load_state_dict_pre_hook(check_layer_state_dict)
