"""The random states of a training process, as plain data a checkpoint can
hold (``torch.load(weights_only=True)`` reads it back): Python's
``random``, numpy's global generator, torch's CPU generator and, where
present, the CUDA generators."""
import random
from typing import Any, Dict

import numpy as np
import torch


def capture_random_state() -> Dict[str, Any]:
    """The current states of ``random``, ``np.random``, torch (and CUDA)."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = dict(
        python=random.getstate(),
        # numpy's uint32 keys as int64: a dtype the weights-only loader of
        # mmkr.utils already allows
        numpy=(kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
               cached_gaussian),
        torch=torch.get_rng_state())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: Dict[str, Any]) -> None:
    """Set the generators to a state :func:`capture_random_state` took."""
    random.setstate(state['python'])
    kind, keys, pos, has_gauss, cached_gaussian = state['numpy']
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss,
                         cached_gaussian))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def seed_epoch(seed: int, epoch: int) -> None:
    """Seed every generator from ``(seed, epoch)`` alone.

    A training epoch that starts from this owes nothing to what ran before
    it (validation, a DataLoader drawing its base seed, a resume), so an
    epoch resumed at its start draws what the uninterrupted run drew.
    """
    epoch_seed = int(
        np.random.SeedSequence([seed % 2**32, epoch]).generate_state(1)[0])
    random.seed(epoch_seed)
    np.random.seed(epoch_seed)
    torch.manual_seed(epoch_seed)  # CUDA's generators too
