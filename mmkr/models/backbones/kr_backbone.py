"""KR-wrapped backbones: any mmpretrain backbone with dynamic layers."""
import fnmatch
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ...utils.validation import check_kr_backbone_options
from ..layers import (DynamicConvBase, DynamicLayer, KRChain,
                      SpectralKREncoder, create_dynamic, get_method,
                      is_convertible)
from .checkpointing import checkpoint_with_kr, checkpointed_blocks
from .probe import (LayerProbe, input_rows, probe_layers, probe_sizes,
                    recomputed_layers)
from .state_dict_check import register_state_dict_checks

# KRBackbone's options that a method may take (its registry entry's
# ``options``): the layer argument each becomes, and the value that means
# "not set" for a method without it.
METHOD_OPTIONS = dict(
    kernel_num=('kernel_num', 1),
    reduction=('reduction', None),
    attention_norm=('norm', 'ln'))


@MODELS.register_module()
class KRBackbone(BaseModule):
    """An mmpretrain backbone whose convolutions and linear layers are
    Kernel Representation (KR) layers.

    The wrapped backbone is built from its config; every ``nn.Conv2d`` and
    ``nn.Linear`` in it except ``static_layers`` is replaced in place (same
    name, same geometry) by the dynamic layer of ``method``, as the method
    registry names it (:func:`create_dynamic`). A method whose layers share
    network-level state (KernelWarehouse's warehouses) builds it first
    from all the layers to replace; it is kept as :attr:`network_state`.
    The KR path rides on any method. d_0 comes
    from the image's low-frequency spectrum (:class:`SpectralKREncoder`) and
    passes through the dynamic layers in the order in which they run.

    Before it swaps a layer, KRBackbone runs the static backbone on probe
    images (:mod:`.probe`) and measures, for every layer: the order in which
    it runs; whose rows its input holds; whether backward runs it again.
    Sample b's kernel serves every row of b: a layer that sees the batch
    folded with windows, heads or tokens, (B*n, ...) with b's n rows one
    after another (Swin's windows, MViT's heads, TNT's pixels), mixes each
    sample's candidates once and applies them to all of its rows. A layer
    stays static where no per-sample kernel fits: its input does not depend
    on the image (a table shared by every sample), its rows follow another
    layout or mix samples, or it runs more than once per pass. Those layers
    are listed in :attr:`kept_static` with the reason and logged once;
    ``force_dynamic`` overrides the probe (then the rows are taken to be
    sample-major); :attr:`folded_names` lists the dynamic layers that fold.
    A layer that backward runs again outside a ``with_cp``
    block KRBackbone takes over (reversible blocks) would recompute with
    another d: construction refuses it and names the blocks.

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
        kernel_num (int): K of the candidate-mixing methods (1x, 4x, ...).
            This and the next two are options of the methods whose registry
            entry lists them; another method refuses a value other than
            the default.
        kr_dims (int): D, the size of the kernel representation.
        with_kr (bool): False gives the plain dynamic network of ``method``
            without d.
        method (str): the dynamic-conv method whose kernel generator every
            dynamic layer runs, a name in the method registry
            (:data:`~mmkr.models.layers.METHODS`), e.g. 'odconv', 'dyconv',
            'condconv' (K candidate kernels mixed by attentions), 'dcd'
            (dynamic convolution decomposition), 'weightnet' (kernels
            generated by a grouped FC).
        reduction (float, optional): hidden width A = max(C_in * reduction,
            minimum) of ODConv's and DyConv's attention trunk; None: the
            method's own (ODConv 1/16, DyConv 1/4).
        attention_norm (str): norm of ODConv's trunk, 'ln' or 'bn'.
        conv_path (str, optional): how every dynamic conv picks its
            execution path (:class:`DynamicConvBase`): None, by its rule of
            thumb; ``'autotune'``, by timing its exact paths once per
            signature; or a path name, forced in every conv (each must
            list it in ``valid_paths()``).
        method_cfg (dict, optional): further options of the method's layer,
            e.g. ``dict(layout='resnet_basic')`` for DCD
            (:class:`~mmkr.models.layers.DCDConv2d`).
        freq_size (int): side of the low-frequency block that gives d_0.
        in_channels (int): image channels, for the d_0 encoder.
        static_layers (Sequence[str], optional): names or glob patterns of
            layers to keep static (their children too). None keeps the first
            layer that runs (the stem or patch embedding) static.
        force_dynamic (Sequence[str], optional): names or glob patterns of
            layers to make dynamic although the probe would keep them
            static; their inputs are then taken to be sample-major.
        return_kr (bool): append d_L to the outputs.
        probe_size (Tuple[int, int], optional): image size of the
            construction-time probes. None: the backbone's own ``img_size``
            where it has one, else the first of (64, 64), (224, 224) and
            (32, 32) that it accepts.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained', ...)``.
    """

    def __init__(self,
                 backbone: dict,
                 kernel_num: int = 1,
                 kr_dims: int = 64,
                 with_kr: bool = True,
                 method: str = 'odconv',
                 reduction: Optional[float] = None,
                 attention_norm: str = 'ln',
                 method_cfg: Optional[dict] = None,
                 conv_path: Optional[str] = None,
                 freq_size: int = 8,
                 in_channels: int = 3,
                 static_layers: Optional[Sequence[str]] = None,
                 force_dynamic: Optional[Sequence[str]] = None,
                 return_kr: bool = False,
                 probe_size: Optional[Tuple[int, int]] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        check_kr_backbone_options(
            dict(kernel_num=kernel_num, kr_dims=kr_dims, with_kr=with_kr,
                 return_kr=return_kr, freq_size=freq_size,
                 in_channels=in_channels, reduction=reduction,
                 attention_norm=attention_norm))
        spec = get_method(method)
        if return_kr and not with_kr:
            raise ValueError('return_kr=True needs with_kr=True: there is no '
                             'kernel representation to return')
        if with_kr and kr_dims < 1:
            raise ValueError(
                f'kr_dims must be >= 1 with KR on, got kr_dims={kr_dims}; '
                'with_kr=False builds the network without KR')
        self.backbone = MODELS.build(backbone)
        self.in_channels = in_channels
        self.kr_dims = kr_dims if with_kr else 0
        self.return_kr = return_kr
        self.encoder = (SpectralKREncoder(kr_dims, in_channels, freq_size)
                        if with_kr else None)

        probes, images = self._probe(probe_size, backbone.get('img_size'))
        order = list(probes)
        if not order:
            raise ValueError(f'{type(self.backbone).__name__} has no '
                             'nn.Conv2d or nn.Linear layer that runs')
        self.static_layers = (list(static_layers) if static_layers is not None
                              else [order[0]])
        self.force_dynamic = list(force_dynamic or [])
        for option in ('static_layers', 'force_dynamic'):
            for pattern in getattr(self, option):
                if not any(self._matches(name, [pattern]) for name in order):
                    raise ValueError(
                        f'{option} pattern {pattern!r} matches no layer of '
                        f'{type(self.backbone).__name__}; its layers are '
                        f'named like {order[:4]} ({len(order)} in all, run '
                        'order)')
        self.kept_static = {
            name: probe.static_reason
            for name, probe in probes.items()
            if probe.static_reason and not self.is_static(name)
            and not self._matches(name, self.force_dynamic)
        }
        self.dynamic_names = [
            name for name in order
            if not self.is_static(name) and name not in self.kept_static
        ]
        self.folded_names = [
            name for name in self.dynamic_names if probes[name].folded
        ]
        self._refuse_recomputed(images)
        self._log_kept_static()
        if not self.dynamic_names:
            raise ValueError(f'static_layers={self.static_layers} leaves no '
                             'layer to make dynamic')
        layer_cfg = dict(kr_dims=self.kr_dims, **(method_cfg or {}))
        given = dict(kernel_num=kernel_num, reduction=reduction,
                     attention_norm=attention_norm)
        for option, value in given.items():
            layer_option, unset = METHOD_OPTIONS[option]
            if option in spec.options:
                layer_cfg[layer_option] = value
            elif value != unset:
                raise ValueError(
                    f'{option}={value!r}: method {method!r} has no option '
                    f'{option!r} (its options: {list(spec.options)})')
        statics = {
            name: self.backbone.get_submodule(name)
            for name in self.dynamic_names
        }
        self.network_state = (spec.network_state(statics, **layer_cfg)
                              if spec.network_state is not None else None)
        if self.network_state is not None:
            layer_cfg['network_state'] = self.network_state
        self.chain = KRChain()
        for name in self.dynamic_names:
            generate_kr = return_kr or name != self.dynamic_names[-1]
            self._replace(name, layer_cfg, generate_kr, method)
        self.set_conv_path(conv_path)
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

    def _probe(self, probe_size: Optional[Tuple[int, int]], img_size=None
               ) -> Tuple[Dict[str, LayerProbe], torch.Tensor]:
        """Probe the static backbone (:func:`probe_layers`) at the first of
        :func:`probe_sizes` that it accepts; the probes and their images."""
        errors = []
        generator = torch.Generator().manual_seed(0)
        for size in probe_sizes(self.backbone, probe_size, img_size):
            images = torch.rand(2, self.in_channels, *size,
                                generator=generator)
            try:
                probes = probe_layers(self.backbone,
                                      self._convertible_names(), images)
            except Exception as error:  # the backbone's own size checks
                errors.append(f'{size}: {type(error).__name__}: {error}')
                continue
            return self._probe_twice_the_size(probes, images), images
        raise ValueError(
            f'{type(self.backbone).__name__} runs on none of the probe sizes '
            'tried; give one it accepts as probe_size. ' + '; '.join(errors))

    def _probe_twice_the_size(self, probes: Dict[str, LayerProbe],
                              images: torch.Tensor
                              ) -> Dict[str, LayerProbe]:
        """Where a backbone folds windows, heads or tokens into the batch,
        probe again, at twice the size, the layers that saw one row per
        sample but see more there: with one window per sample (Swin's last
        stage at its own img_size) a window-major layout looks like a
        sample-major one. A backbone that folds nothing at the probe size
        (a CNN), or that accepts its own size only, keeps ``probes``."""
        if not any(probe.folded for probe in probes.values()):
            return probes
        single = [
            name for name, probe in probes.items()
            if probe.rows == 2 and probe.static_reason is None
        ]
        larger = F.interpolate(images, scale_factor=2.)
        try:
            rows = input_rows(self.backbone, single, larger)
        except Exception:  # it accepts its own size only
            return probes
        grown = [name for name in single if rows.get(name, 2) > 2]
        if not grown:
            return probes
        return {
            **probes,
            **probe_layers(self.backbone, grown, larger)
        }

    def _refuse_recomputed(self, images: torch.Tensor):
        """Raise where backward runs a would-be dynamic layer again outside
        the ``with_cp`` blocks that :func:`checkpoint_with_kr` takes over:
        the recomputation would read another layer's d."""
        blocks = checkpointed_blocks(self.backbone)
        again = set(
            recomputed_layers(self.backbone, self.dynamic_names, images))
        recomputed = [
            name for name in self.dynamic_names
            if name in again and not self._matches(name, blocks)
        ]
        if recomputed:
            parents = list(dict.fromkeys(
                self._block_of(name) for name in recomputed))
            raise ValueError(
                f'{type(self.backbone).__name__} runs {len(recomputed)} '
                f'layers again during backward, in {parents} (reversible or '
                'self-checkpointed blocks), where their kernel '
                'representation would not be the one of the forward pass. '
                'Keep them static, e.g. static_layers='
                f'{[*self.static_layers, *(p + ".*" for p in parents)]}, or '
                "switch the backbone's recomputation off")

    def _block_of(self, name: str) -> str:
        """The block a layer belongs to: the child of the backbone above
        it, or its item where that child is a list of blocks."""
        parts = name.split('.')
        container = self.backbone.get_submodule(parts[0])
        if isinstance(container, (nn.ModuleList, nn.Sequential)):
            return '.'.join(parts[:2])
        return parts[0]

    def _log_kept_static(self):
        if not self.kept_static:
            return
        by_reason: Dict[str, List[str]] = {}
        for name, reason in self.kept_static.items():
            by_reason.setdefault(reason, []).append(name)
        print_log(
            f'KRBackbone keeps {len(self.kept_static)} layers of '
            f'{type(self.backbone).__name__} static (force_dynamic overrides '
            'this): ' + '; '.join(f'{names} because {reason}'
                                  for reason, names in by_reason.items()),
            logger='current', level=logging.INFO)

    @staticmethod
    def _matches(name: str, patterns: Sequence[str]) -> bool:
        """Whether ``name`` or a module above it matches one of
        ``patterns``."""
        return any(
            fnmatch.fnmatchcase(name, pattern)
            or fnmatch.fnmatchcase(name, pattern + '.*')
            for pattern in patterns)

    def is_static(self, name: str) -> bool:
        """Whether ``static_layers`` keeps ``name`` static."""
        return self._matches(name, self.static_layers)

    def _replace(self, name: str, layer_cfg: dict, generate_kr: bool,
                 method: str):
        parent_name, _, child = name.rpartition('.')
        parent = self.backbone.get_submodule(parent_name)
        if self.network_state is not None:
            layer_cfg = dict(layer_cfg, name=name)
        layer = create_dynamic(
            getattr(parent, child), method, generate_kr=generate_kr,
            **layer_cfg)
        layer.chain = self.chain
        # the probe found every dynamic layer's input sample-major
        layer.batch_folded = True
        setattr(parent, child, layer)

    def set_conv_path(self, conv_path: Optional[str]):
        """Set how every dynamic conv picks its path (see ``conv_path``
        above); a forced path must be exact for every conv."""
        convs = {
            name: layer
            for name, layer in self.dynamic_layers.items()
            if isinstance(layer, DynamicConvBase)
        }
        if conv_path not in (None, 'autotune'):
            for name, layer in convs.items():
                if conv_path not in layer.valid_paths():
                    raise ValueError(
                        f'conv_path={conv_path!r} is not an exact path of '
                        f'{name} ({type(layer).__name__}: '
                        f'{layer.valid_paths()}); use None (the rule), '
                        "'autotune' or a path every conv has")
        for layer in convs.values():
            layer.path = conv_path

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
        then each dynamic layer is drawn again by its method's authors' rule
        and the d_0 encoder by KR's (their ``reset_parameters``;
        docs/initialisation.md), whatever the wrapped backbone's
        ``init_cfg`` did to their submodules. A ``Pretrained`` init_cfg
        loads the whole KR backbone instead."""
        super().init_weights()
        if not (isinstance(self.init_cfg, dict)
                and self.init_cfg.get('type') == 'Pretrained'):
            for layer in self.dynamic_layers.values():
                layer.reset_parameters()
            if self.encoder is not None:
                self.encoder.reset_parameters()

    def forward(self, x: torch.Tensor) -> tuple:
        if x.dim() != 4 or x.size(1) != self.in_channels:
            raise ValueError(
                f'KRBackbone expects images of shape (B, {self.in_channels}'
                f', H, W), got {tuple(x.shape)}')
        self.chain.d = self.encoder(x) if self.encoder is not None else None
        self.chain.batch = x.shape[0]
        try:
            outs = tuple(self.backbone(x))
            if self.return_kr:
                outs = outs + (self.chain.d, )
        finally:
            self.chain.d = self.chain.batch = None
        return outs
