"""KR-wrapped backbones: any mmpretrain backbone with dynamic layers."""
import fnmatch
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..layers import (DynamicLayer, KRChain, SpectralKREncoder,
                      create_dynamic, is_convertible)
from .checkpointing import checkpoint_with_kr
from .state_dict_check import register_state_dict_checks


def execution_order(model: nn.Module, names: Sequence[str],
                    inputs: torch.Tensor) -> List[str]:
    """The order in which the named submodules run in one forward pass.

    Raises if a module runs more than once (a shared layer cannot carry d
    both times) and returns only the modules that ran.
    """
    modules = dict(model.named_modules())
    order: List[str] = []

    def record(name):

        def hook(module, args):
            if name in order:
                raise RuntimeError(
                    f'{name} runs more than once per forward pass; a shared '
                    'layer cannot carry a kernel representation. List it in '
                    'static_layers.')
            order.append(name)

        return hook

    handles = [
        modules[name].register_forward_pre_hook(record(name))
        for name in names
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return order


@MODELS.register_module()
class KRBackbone(BaseModule):
    """An mmpretrain backbone whose convolutions and linear layers are
    Kernel Representation (KR) layers.

    The wrapped backbone is built from its config; every ``nn.Conv2d`` and
    ``nn.Linear`` in it except ``static_layers`` is replaced in place (same
    name, same geometry) by :class:`DynamicConv2d` / :class:`DynamicLinear`.
    d_0 comes from the image's low-frequency spectrum
    (:class:`SpectralKREncoder`) and passes through the dynamic layers in the
    order in which they run, measured once at construction on a probe image.

    The outputs are those of the wrapped backbone (``out_indices`` included),
    so necks and heads of MMDetection and MMSegmentation work unchanged. With
    ``return_kr=True`` the final d_L is appended to the outputs for a KR
    classification head (:class:`KRLinearClsHead`); without it the last
    layer builds no KR generator, so DDP sees no parameter without gradient.

    Options of the wrapped backbone keep their meaning. ``frozen_stages``
    freezes the dynamic layers in those stages, kernel generators, F and K
    included (no gradient, eval mode after ``train()``); the d_0 encoder is
    frozen with the first dynamic layer, which reads d_0. ``norm_eval`` puts
    every BatchNorm in eval mode, the ``attention_norm='bn'`` norms of F
    included; LayerNorm (the default of F and K) has no running statistics,
    so there is nothing for it to freeze. ``with_cp`` blocks are checkpointed
    with d as an explicit input (:func:`checkpoint_with_kr`). A checkpoint
    that does not fit is refused with the reason
    (:func:`register_state_dict_checks`).

    Args:
        backbone (dict): config of the mmpretrain backbone to wrap.
        kernel_num (int): K, candidate kernels per layer (1x, 4x, ...).
        kr_dims (int): D, the size of the kernel representation.
        with_kr (bool): False gives the plain dynamic network (ODConv, DyConv
            or CondConv by ``attention``) without d.
        reduction (float): hidden width A = max(C_in * reduction, 16).
        attention (str): 'odconv', 'dyconv' or 'condconv'.
        attention_norm (str): norm of the fusion layer, 'ln' or 'bn'.
        freq_size (int): side of the low-frequency block that gives d_0.
        in_channels (int): image channels, for the d_0 encoder.
        static_layers (Sequence[str], optional): names or glob patterns of
            layers to keep static (their children too). None keeps the first
            layer that runs (the stem or patch embedding) static.
        return_kr (bool): append d_L to the outputs.
        probe_size (Tuple[int, int]): image size of the construction-time
            probe that measures the execution order.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained', ...)``.
    """

    def __init__(self,
                 backbone: dict,
                 kernel_num: int = 1,
                 kr_dims: int = 64,
                 with_kr: bool = True,
                 reduction: float = 0.0625,
                 attention: str = 'odconv',
                 attention_norm: str = 'ln',
                 freq_size: int = 8,
                 in_channels: int = 3,
                 static_layers: Optional[Sequence[str]] = None,
                 return_kr: bool = False,
                 probe_size: Tuple[int, int] = (64, 64),
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if return_kr and not with_kr:
            raise ValueError('return_kr=True needs with_kr=True: there is no '
                             'kernel representation to return')
        self.backbone = MODELS.build(backbone)
        self.in_channels = in_channels
        self.kr_dims = kr_dims if with_kr else 0
        self.return_kr = return_kr
        self.encoder = (SpectralKREncoder(kr_dims, in_channels, freq_size)
                        if with_kr else None)

        order = execution_order(
            self.backbone, self._convertible_names(),
            torch.zeros(1, in_channels, *probe_size))
        if not order:
            raise ValueError(f'{type(self.backbone).__name__} has no '
                             'nn.Conv2d or nn.Linear layer that runs')
        self.static_layers = (list(static_layers) if static_layers is not None
                              else [order[0]])
        self.dynamic_names = [
            name for name in order if not self._is_static(name)
        ]
        if not self.dynamic_names:
            raise ValueError(f'static_layers={self.static_layers} leaves no '
                             'layer to make dynamic')
        layer_cfg = dict(kernel_num=kernel_num, reduction=reduction,
                         kr_dims=self.kr_dims, attention=attention,
                         norm=attention_norm)
        self.chain = KRChain()
        for name in self.dynamic_names:
            generate_kr = return_kr or name != self.dynamic_names[-1]
            self._replace(name, layer_cfg, generate_kr)
        self.checkpointed_blocks = checkpoint_with_kr(self.backbone,
                                                      self.chain)
        register_state_dict_checks(self)
        # The wrapped backbone froze its stages before their layers were
        # replaced; freeze the new ones. Only where stages are frozen, as
        # mmpretrain does: a ViT's _freeze_stages also freezes its patch
        # embedding and position embedding.
        if getattr(self.backbone, 'frozen_stages', 0) > 0:
            self.backbone._freeze_stages()
        self.train(self.training)

    def _convertible_names(self) -> List[str]:
        return [
            name for name, m in self.backbone.named_modules()
            if is_convertible(m)
        ]

    def _is_static(self, name: str) -> bool:
        return any(
            fnmatch.fnmatchcase(name, pattern)
            or fnmatch.fnmatchcase(name, pattern + '.*')
            for pattern in self.static_layers)

    def _replace(self, name: str, layer_cfg: dict, generate_kr: bool):
        parent_name, _, child = name.rpartition('.')
        parent = self.backbone.get_submodule(parent_name)
        layer = create_dynamic(
            getattr(parent, child), generate_kr=generate_kr, **layer_cfg)
        layer.chain = self.chain
        setattr(parent, child, layer)

    @property
    def dynamic_layers(self) -> Dict[str, DynamicLayer]:
        """The dynamic layers by name, in the order in which they run."""
        return {
            name: self.backbone.get_submodule(name)
            for name in self.dynamic_names
        }

    def train(self, mode: bool = True) -> 'KRBackbone':
        super().train(mode)
        first = self.dynamic_layers[self.dynamic_names[0]]
        if self.encoder is not None and not any(
                p.requires_grad for p in first.parameters()):
            self.encoder.eval()
            self.encoder.requires_grad_(False)
        return self

    def init_weights(self):
        """The wrapped backbone's own initialisation for its static parts;
        each dynamic layer draws its candidates as the static layer would
        (see their ``reset_parameters``). A ``Pretrained`` init_cfg loads
        the whole KR backbone instead."""
        super().init_weights()
        if not (isinstance(self.init_cfg, dict)
                and self.init_cfg.get('type') == 'Pretrained'):
            for layer in self.dynamic_layers.values():
                layer.reset_parameters()

    def forward(self, x: torch.Tensor) -> tuple:
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f'KRBackbone expects images of shape (B, {self.in_channels}'
                f', H, W), got {tuple(x.shape)}')
        self.chain.d = self.encoder(x) if self.encoder is not None else None
        try:
            outs = tuple(self.backbone(x))
            if self.return_kr:
                outs = outs + (self.chain.d, )
        finally:
            self.chain.d = None
        return outs
