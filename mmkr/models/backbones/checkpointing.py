"""Activation checkpointing (``with_cp``) that carries d correctly.

A wrapped block that checkpoints itself re-runs its forward during backward.
Its dynamic layers read d from the shared :class:`KRChain`, which by then
holds another layer's d (or None), so the recomputed activations, and the
gradients, would be wrong. Here each such block instead runs through
``torch.utils.checkpoint`` with d as an explicit input and output: the
recomputation starts from the d the block saw in the forward pass.
"""
import functools
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from ..layers import KRChain


def _run_block(block: nn.Module, chain: KRChain, x: torch.Tensor,
               d: Optional[torch.Tensor]
               ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(x, d_in) -> (block(x), d_out), leaving the chain as it found it
    (the recomputation in backward must not leak a d into the chain)."""
    saved = chain.d
    chain.d = d
    try:
        out = type(block).forward(block, x)
        return out, chain.d
    finally:
        chain.d = saved


def _checkpointed_forward(block: nn.Module, chain: KRChain,
                          x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled():
        out, chain.d = checkpoint(
            _run_block, block, chain, x, chain.d, use_reentrant=False)
    else:
        out, chain.d = _run_block(block, chain, x, chain.d)
    return out


def checkpoint_with_kr(model: nn.Module, chain: KRChain) -> List[str]:
    """Take over ``with_cp`` from the blocks of ``model`` that checkpoint
    themselves: the innermost modules with ``with_cp=True`` (a backbone such
    as ResNet also stores the flag it hands down to its blocks).

    Each such block gets ``with_cp = False`` (so it does not checkpoint itself
    with the chain's mutable d) and a ``forward`` that checkpoints it with d
    passed explicitly. Parameter names do not change. Returns the names of
    the blocks.
    """
    flagged = [
        name for name, module in model.named_modules()
        if getattr(module, 'with_cp', False)
    ]
    names = [
        name for name in flagged if not any(
            other.startswith(f'{name}.' if name else '') and other != name
            for other in flagged)
    ]
    for name in names:
        block = model.get_submodule(name)
        block.with_cp = False
        block.forward = functools.partial(_checkpointed_forward, block, chain)
    return names
