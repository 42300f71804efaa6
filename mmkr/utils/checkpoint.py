"""Loading mmengine checkpoints with ``torch.load(weights_only=True)``.

Since torch 2.6 ``torch.load`` unpickles only tensors, containers and
allow-listed globals, and mmengine 0.10.7's resume fails on its own
checkpoints: their message hub holds ``HistoryBuffer`` objects and numpy
values. :func:`register_local_loader` (called when mmkr is imported) makes
:func:`load_from_local` mmengine's loader for local files: it keeps
``weights_only=True`` and allows exactly the globals of an mmengine
checkpoint, and only while it reads a local file.
"""
import os.path as osp
import pickle
import re
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader

try:
    from numpy._core import multiarray
except ImportError:  # numpy < 2
    from numpy.core import multiarray

# mmengine pickles a HistoryBuffer's built-in statistics methods as
# getattr(HistoryBuffer, name); nothing else in its checkpoints uses getattr.
HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_method(owner: Any, name: str) -> Callable:
    """``getattr`` restricted to ``HistoryBuffer.{min,max,current,mean}``,
    standing in for ``builtins.getattr`` when a checkpoint is unpickled."""
    if owner is not HistoryBuffer or name not in HISTORY_BUFFER_METHODS:
        raise pickle.UnpicklingError(
            f'the checkpoint asks for getattr({owner!r}, {name!r}); only '
            'the statistics methods of mmengine HistoryBuffer are allowed')
    return getattr(owner, name)


SafeGlobal = Union[Callable, Tuple[Callable, str]]

# Every global in a checkpoint of mmengine's Runner, found in real ones
# (torch.serialization.get_unsafe_globals_in_checkpoint, and the types of
# the numpy values): the message hub's HistoryBuffers, whose histories are
# float64 and int64 arrays, and float64 scalars. numpy >= 2 pickles from
# numpy._core; files written with numpy 1 name the same functions
# numpy.core. The dtype classes are never named in the file, but torch
# only restores the state of objects of allow-listed types.
MMENGINE_CHECKPOINT_GLOBALS: List[SafeGlobal] = [
    (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
    (history_buffer_method, 'builtins.getattr'),
    (np.ndarray, 'numpy.ndarray'),
    (np.dtype, 'numpy.dtype'),
    (type(np.dtype(np.float64)), 'numpy.dtypes.Float64DType'),
    (type(np.dtype(np.int64)), 'numpy.dtypes.Int64DType'),
    (multiarray._reconstruct, 'numpy._core.multiarray._reconstruct'),
    (multiarray.scalar, 'numpy._core.multiarray.scalar'),
    (multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
    (multiarray.scalar, 'numpy.core.multiarray.scalar'),
]


def _refusal(filename: str, err: pickle.UnpicklingError) -> str:
    """Why ``filename`` was refused, naming the global torch stopped at."""
    found = re.search(r'GLOBAL ([\w.]+)', str(err))
    detail = (f'it holds {found.group(1)}, which is not on the allow-list'
              if found else f'it cannot be read safely ({err})')
    return (f'Refusing to load the checkpoint {filename}: {detail}. mmkr '
            'loads checkpoints with torch.load(weights_only=True), allowing '
            "only tensors, containers and the types of mmengine's own "
            'checkpoints (mmkr.utils.MMENGINE_CHECKPOINT_GLOBALS), because '
            'unpickling anything else can run code. If you trust the file, '
            'load it yourself and save only its state_dict.')


def load_from_local(filename: str,
                    map_location: Optional[Any] = None,
                    mmap: bool = False) -> Any:
    """Load a local checkpoint with ``weights_only=True`` inside
    ``torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS)``;
    ``mmap=True`` maps its tensors instead of reading them (to read its
    ``meta`` alone).

    Raises:
        FileNotFoundError: ``filename`` is not a file.
        pickle.UnpicklingError: the file holds another global; the message
            names it.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
        try:
            return torch.load(
                filename,
                map_location=map_location,
                weights_only=True,
                mmap=mmap)
        except pickle.UnpicklingError as err:
            raise pickle.UnpicklingError(_refusal(filename, err)) from None


# what a tool that reads a training checkpoint by itself calls
load_training_checkpoint = load_from_local


def register_local_loader() -> None:
    """Make :func:`load_from_local` mmengine's loader for local paths (the
    empty prefix: every path no other scheme claims)."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
