"""Activation checkpointing (``with_cp``) that carries d correctly.

A wrapped block that checkpoints itself re-runs its forward during backward.
Its dynamic layers read d from the shared :class:`KRChain`, which by then
holds another layer's d (or None), so the recomputed activations, and the
gradients, would be wrong. Here each such block instead runs through
``torch.utils.checkpoint`` with d as an explicit input and output: the
recomputation starts from the d the block saw in the forward pass.
"""
import functools
from typing import Any, List, Optional, Tuple

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from ..layers import KRChain


def _run_block(block: nn.Module, chain: KRChain, d: Optional[torch.Tensor],
               batch: Optional[int], *args, **kwargs
               ) -> Tuple[Any, Optional[torch.Tensor]]:
    """(d_in, inputs) -> (block(inputs), d_out) in a pass of ``batch``
    samples, leaving the chain as it found it (the recomputation in
    backward, after the pass, must not leak a d into the chain)."""
    saved = chain.d, chain.batch
    chain.d, chain.batch = d, batch
    try:
        out = type(block).forward(block, *args, **kwargs)
        return out, chain.d
    finally:
        chain.d, chain.batch = saved


def _checkpointed_forward(block: nn.Module, chain: KRChain, *args,
                          **kwargs) -> Any:
    if torch.is_grad_enabled():
        out, chain.d = checkpoint(
            _run_block, block, chain, chain.d, chain.batch, *args,
            use_reentrant=False, **kwargs)
    else:
        out, chain.d = _run_block(block, chain, chain.d, chain.batch, *args,
                                  **kwargs)
    return out


def checkpointed_blocks(model: nn.Module) -> List[str]:
    """The blocks of ``model`` that checkpoint themselves: the innermost
    modules with ``with_cp=True`` (a backbone such as ResNet also stores the
    flag it hands down to its blocks)."""
    flagged = [
        name for name, module in model.named_modules()
        if getattr(module, 'with_cp', False)
    ]
    return [
        name for name in flagged if not any(
            other.startswith(f'{name}.' if name else '') and other != name
            for other in flagged)
    ]


def checkpoint_with_kr(model: nn.Module, chain: KRChain) -> List[str]:
    """Take over ``with_cp`` from the :func:`checkpointed_blocks` of
    ``model``.

    Each such block gets ``with_cp = False`` (so it does not checkpoint itself
    with the chain's mutable d) and a ``forward`` that checkpoints it with d
    passed explicitly. Parameter names do not change. Returns the names of
    the blocks.
    """
    names = checkpointed_blocks(model)
    for name in names:
        block = model.get_submodule(name)
        block.with_cp = False
        block.forward = functools.partial(_checkpointed_forward, block, chain)
    return names
