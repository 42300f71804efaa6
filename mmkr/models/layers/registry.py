"""The method registry: where a dynamic-conv method declares itself.

A method is one module under ``mmkr/models/layers/`` that ends with
:func:`register_method`. Everything that needs to know the methods (the
factory :func:`~mmkr.models.layers.create_dynamic`, ``KRBackbone``, the
temperature hook, the checkpoint checks, the tools) reads this registry, so
adding a method touches no other file of mmkr.
"""
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Tuple

import torch.nn as nn


@dataclass(frozen=True)
class TemperatureSchedule:
    """A temperature that falls linearly, per iteration, from ``init`` to
    ``final`` over the first ``epochs`` epochs and stays at ``final``.

    ``positive``: the method divides its logits by the temperature, so it
    must stay above 0 (ODConv's T); False where 0 is its end point
    (KernelWarehouse's τ).
    """
    init: float
    final: float
    epochs: float
    positive: bool = True

    def value(self, iteration: int, iters_per_epoch: int) -> float:
        """The temperature at the (0-based, global) ``iteration``."""
        progress = iteration / (self.epochs * iters_per_epoch)
        return self.final + max(0., 1. - progress) * (self.init - self.final)


@dataclass(frozen=True)
class DynamicMethod:
    """One dynamic-conv method.

    Args:
        name (str): the value of ``KRBackbone(method=...)``.
        code (int): recorded in every layer's state dict as
            ``method_code``; never reused, so that checkpoints of two
            methods are told apart even where their tensors have the same
            shapes.
        display_name (str): the name tables and plots print.
        layers (Mapping[type, type]): the dynamic layer class for each static
            type it replaces (``nn.Conv2d``, ``nn.Linear``); each has
            ``from_static(static, **options)``.
        options (Tuple[str, ...]): the ``KRBackbone`` options this method's
            layers take (``kernel_num``, ``reduction``, ``attention_norm``);
            a backbone refuses the others.
        layer_kwargs (Mapping): fixed arguments of every layer of the method
            (``method='dyconv'`` for the shared candidate-mixing layers).
        size_option (str, optional): the option a table prints as the
            method's width, ``'4x'`` for ``kernel_num=4``.
        temperature (TemperatureSchedule, optional): the default schedule of
            :class:`~mmkr.engine.KRTemperatureHook`; None: the method has no
            temperature. Each layer keeps its value in a buffer named
            ``temperature`` on its generator.
        network_state (callable, optional): state the layers of a network
            share, built before them (KernelWarehouse's warehouses):
            ``network_state(statics, **options) -> nn.Module``, with
            ``statics`` the static layers to be replaced by name in run
            order. ``KRBackbone`` keeps the module (its parameters are in the
            state dict) and passes ``network_state=module, name=name`` to
            each layer's ``from_static``.
    """
    name: str
    code: int
    display_name: str
    layers: Mapping[type, type]
    options: Tuple[str, ...] = ()
    layer_kwargs: Mapping = field(default_factory=dict)
    size_option: Optional[str] = None
    temperature: Optional[TemperatureSchedule] = None
    network_state: Optional[Callable[..., nn.Module]] = None


METHODS: Dict[str, DynamicMethod] = {}


def register_method(method: DynamicMethod) -> DynamicMethod:
    """Add ``method``; a name or code already taken raises."""
    if method.name in METHODS:
        raise KeyError(f'dynamic-conv method {method.name!r} is already '
                       'registered')
    taken = {m.code: m.name for m in METHODS.values()}
    if method.code in taken:
        raise KeyError(f'method code {method.code} of {method.name!r} is '
                       f'already taken by {taken[method.code]!r}')
    METHODS[method.name] = method
    return method


def method_names() -> list:
    """The registered methods' names, in the order of their codes."""
    return [m.name for m in sorted(METHODS.values(), key=lambda m: m.code)]


def get_method(name: str) -> DynamicMethod:
    """The registered method ``name``; raises naming the valid ones."""
    if name not in METHODS:
        raise ValueError(f'unknown dynamic-conv method {name!r}; valid '
                         f'methods: {method_names()}')
    return METHODS[name]


def method_of_code(code: int) -> Optional[DynamicMethod]:
    """The method whose state-dict code is ``code``, None if none is."""
    return next((m for m in METHODS.values() if m.code == code), None)
