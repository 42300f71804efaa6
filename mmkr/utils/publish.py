"""Checkpoints for the model zoo: training state stripped, hash in the name."""
import os
import os.path as osp
from typing import Any

import torch

from .download import load_weights, sha256_of, staged_file

_PLAIN = (str, int, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    """Only what ``torch.load(weights_only=True)`` reads back."""
    if isinstance(value, _PLAIN) or isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(
            isinstance(k, _PLAIN) and _is_plain(v) for k, v in value.items())
    return False


def strip_training_state(checkpoint: dict) -> dict:
    """``{'meta': ..., 'state_dict': ...}`` of a training checkpoint.

    The optimizer, the schedulers and the message hub go; so do meta entries
    that are not plain data (they would need ``weights_only=False``). A bare
    state dict is wrapped as it is.
    """
    if 'state_dict' not in checkpoint:
        return dict(meta={}, state_dict=dict(checkpoint))
    meta = {
        k: v
        for k, v in checkpoint.get('meta', {}).items() if _is_plain(v)
    }
    return dict(meta=meta, state_dict=dict(checkpoint['state_dict']))


def publish_checkpoint(checkpoint: dict, out_stem: str) -> str:
    """Writes ``strip_training_state(checkpoint)`` to
    ``<out_stem>-<sha256[:8]>.pth`` and returns that path.

    The file is checked to load with ``weights_only=True``. An existing file
    of that name is the same bytes (same hash) and is left as it is.
    """
    out_dir = osp.dirname(osp.abspath(out_stem))
    os.makedirs(out_dir, exist_ok=True)
    with staged_file(out_dir, suffix='.pth.part') as tmp:
        torch.save(strip_training_state(checkpoint), tmp)
        load_weights(tmp)
        final = f'{out_stem}-{sha256_of(tmp)[:8]}.pth'
        if not osp.exists(final):
            os.replace(tmp, final)
    return final
