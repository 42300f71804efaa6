"""What the kernel generators of a dynamic network compute, read through
forward hooks: the attentions alpha_i of each layer, d_{i+1}, and summaries
of them per stage.

Used by :class:`mmkr.engine.AttentionStatsHook` during training and by
``tools/visualization/vis_attention.py`` on a trained model. Nothing here
changes what the model computes: the hooks only keep detached copies of the
generator's logits alpha~_i (B, L) and of the KR generator's output d_{i+1}
(B, D), and the attentions are recomputed from the logits with the
generator's own ``activate``.
"""
import math
from collections import defaultdict
from typing import Dict

import torch
import torch.nn as nn

from ..models.backbones import KRBackbone
from ..models.layers import DynamicLayer

# Heads of ODConv-style generators whose mean attention is summarised.
FEATURE_HEADS = ('channel', 'filter', 'spatial')


def stage_of(backbone: nn.Module, name: str) -> str:
    """The stage of the dynamic layer ``name`` of a wrapped backbone.

    A stage is a top-level child of the backbone (ResNet's ``layer1``,
    MobileNetV2's ``layer3`` or ``conv2``); where that child is an
    ``nn.ModuleList`` of blocks (ViT's ``layers``, PoolFormer's
    ``network``), each item is a stage (``layers.3``, ``network.2``).
    """
    head, _, rest = name.partition('.')
    if rest and isinstance(getattr(backbone, head, None), nn.ModuleList):
        return f'{head}.{rest.split(".")[0]}'
    return head


def dynamic_layers_by_stage(model: nn.Module
                            ) -> Dict[str, Dict[str, DynamicLayer]]:
    """stage -> {layer name: layer}, in the order in which the layers run.

    Layers of a :class:`KRBackbone` are named as in its
    ``dynamic_names`` and grouped by :func:`stage_of`; a dynamic layer
    elsewhere (a dynamic classifier) forms the stage of its top-level
    module (``head``).
    """
    stages: Dict[str, Dict[str, DynamicLayer]] = defaultdict(dict)
    grouped = set()
    for module in model.modules():
        if isinstance(module, KRBackbone):
            for name, layer in module.dynamic_layers.items():
                stages[stage_of(module.backbone, name)][name] = layer
                grouped.add(layer)
    for name, module in model.named_modules():
        if isinstance(module, DynamicLayer) and module not in grouped:
            stages[name.split('.')[0]][name] = module
    return dict(stages)


def kernel_distribution(kernel: torch.Tensor) -> torch.Tensor:
    """p = a / Σ_k a_k of kernel attentions a (B, K): a softmax attention
    (ODConv, DyConv) is unchanged, CondConv's sigmoid routing weights become
    a distribution over the K kernels."""
    kernel = kernel.float()
    return kernel / kernel.sum(dim=1, keepdim=True)


def kernel_entropy(kernel: torch.Tensor) -> torch.Tensor:
    """Normalised entropy -Σ_k p_k log p_k / log K of kernel attentions
    (B, K) -> (B,), p = :func:`kernel_distribution`: 1 when a sample mixes
    the K kernels uniformly, 0 when it uses one kernel."""
    p = kernel_distribution(kernel)
    return -torch.xlogy(p, p).sum(dim=1) / math.log(kernel.size(1))


class AttentionRecorder:
    """Forward hooks that keep, per dynamic layer, the generator logits
    alpha~_i (B, L) and d_{i+1} (B, D) of the next forward pass.

    Only the first call per layer is kept: activation checkpointing runs a
    block's forward again during backward, with the same inputs.

    Args:
        layers (Dict[str, DynamicLayer]): the layers to record, by name.
    """

    def __init__(self, layers: Dict[str, DynamicLayer]):
        self.layers = layers
        self.logits: Dict[str, torch.Tensor] = {}
        self.kr: Dict[str, torch.Tensor] = {}
        self.handles = []
        for name, layer in layers.items():
            self.handles.append(layer.generator.register_forward_hook(
                self._keep(self.logits, name)))
            if getattr(layer, 'kr_generator', None) is not None:
                self.handles.append(layer.kr_generator.register_forward_hook(
                    self._keep(self.kr, name)))

    @staticmethod
    def _keep(store: Dict[str, torch.Tensor], name: str):

        def hook(module, args, output):
            store.setdefault(name, output.detach())

        return hook

    def attentions(self) -> Dict[str, tuple]:
        """name -> the generator's activated attentions (its NamedTuple,
        e.g. :class:`KernelAttention`) of the recorded logits."""
        with torch.no_grad():
            return {
                name: self.layers[name].generator.activate(logits)
                for name, logits in self.logits.items()
            }

    def clear(self) -> None:
        self.logits.clear()
        self.kr.clear()

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


def stage_statistics(stages: Dict[str, Dict[str, DynamicLayer]],
                     recorder: AttentionRecorder) -> Dict[str, float]:
    """Scalars ``<stat>/<stage>`` of one recorded batch.

    Each is the mean over the stage's layers of a per-layer batch mean:

    - ``kernel_entropy``: :func:`kernel_entropy` of the kernel attention
      (layers with K >= 2);
    - ``channel``, ``filter``, ``spatial``: the mean attention of that head;
    - ``kr_norm``: ||d_{i+1}||_2 (layers with a KR generator);
    - ``temperature``: the generator's temperature T.

    A statistic that no layer of the stage has is left out.
    """
    attentions = recorder.attentions()
    scalars = {}
    for stage, layers in stages.items():
        values = defaultdict(list)
        for name, layer in layers.items():
            att = attentions.get(name)
            if att is None:
                continue
            kernel = getattr(att, 'kernel', None)
            if kernel is not None:
                values['kernel_entropy'].append(
                    kernel_entropy(kernel).mean().item())
            for head in FEATURE_HEADS:
                part = getattr(att, head, None)
                if part is not None:
                    values[head].append(part.float().mean().item())
            if name in recorder.kr:
                values['kr_norm'].append(
                    recorder.kr[name].float().norm(dim=1).mean().item())
            temperature = getattr(layer.generator, 'temperature', None)
            if temperature is not None:
                values['temperature'].append(float(temperature))
        for stat, per_layer in values.items():
            scalars[f'{stat}/{stage}'] = sum(per_layer) / len(per_layer)
    return scalars
