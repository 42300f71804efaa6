"""Which checkpoint a resume may use: one that loads, not just one named,
and of the work dir's own files the one with the most training done.

mmengine resumes from the file ``last_checkpoint`` names, whatever state it
is in. Here a checkpoint counts as complete only if mmkr's safe loader reads
it (``torch.load(weights_only=True)``, see :mod:`mmkr.utils.checkpoint`)
and it holds what a resume needs.
"""
import glob
import os.path as osp
import re
from typing import Iterator, Optional, Tuple

from mmengine.runner import CheckpointLoader

from mmkr.utils import CheckpointIntegrityError, load_from_local

# the checkpoints that carry a whole training state (best_* ones hold no
# optimizer): CheckpointHook's epoch_N.pth / iter_N.pth
RESUMABLE_NAME = re.compile(r'^(epoch|iter)_\d+\.pth$')


def why_not_resumable(path: str) -> Optional[str]:
    """None if ``path`` loads with the safe loader and holds a training
    state (``meta`` with ``epoch`` and ``iter``, ``state_dict``); else the
    reason, as the loader or the check words it."""
    try:
        checkpoint = CheckpointLoader.load_checkpoint(path,
                                                      map_location='cpu',
                                                      logger='silent')
    except Exception as error:  # whatever stops the load is the reason
        return f'{type(error).__name__}: {error}'
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if not (isinstance(meta, dict) and {'epoch', 'iter'} <= meta.keys()
            and 'state_dict' in checkpoint):
        return ('it loads but holds no training state (meta with epoch and '
                'iter, and state_dict)')
    return None


def named_by_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``work_dir/last_checkpoint`` names, if that file
    exists.

    mmkr writes the name relative to the work dir, so a work dir moved or
    copied elsewhere names its own file. An absolute path (what mmengine
    and earlier mmkr wrote) is read as it is, unless it points into another
    folder and the work dir holds a file of the same name: then the work dir
    is a copy, and its own file is the one meant.
    """
    save_file = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(save_file):
        return None
    with open(save_file) as f:
        named = f.read().strip()
    if not named or '://' in named:
        return named or None
    if not osp.isabs(named):
        return osp.join(work_dir, named)
    own = osp.join(work_dir, osp.basename(named))
    if (osp.dirname(named) != osp.abspath(work_dir) and osp.isfile(own)):
        return own
    return named


def progress(path: str) -> Tuple[int, int]:
    """(iterations, epochs) of training done, as the checkpoint's ``meta``
    records them; (-1, -1) for a file that does not load."""
    try:
        meta = load_from_local(path, map_location='cpu', mmap=True)['meta']
        return int(meta['iter']), int(meta['epoch'])
    except Exception:  # a broken file: tried last, then skipped with a reason
        return -1, -1


def resume_candidates(work_dir: str) -> Iterator[str]:
    """Checkpoints to resume ``work_dir`` from, best first: the one
    ``last_checkpoint`` names, then every ``epoch_N.pth`` / ``iter_N.pth``
    of its folder (and of ``work_dir``), most training done first (the
    iteration and epoch stored in each; not the file times, which a copy
    or a restore from backup changes)."""
    named = named_by_last_checkpoint(work_dir)
    folders = {osp.abspath(work_dir)}
    if named is not None:
        yield named
        if '://' not in named:
            folders.add(osp.dirname(osp.abspath(named)))
    found = [
        path for folder in folders
        for path in glob.glob(osp.join(folder, '*.pth'))
        if RESUMABLE_NAME.match(osp.basename(path))
    ]
    for path in sorted(found, key=progress, reverse=True):
        if named is None or osp.abspath(path) != osp.abspath(named):
            yield path


def latest_complete_checkpoint(work_dir: str, logger) -> Optional[str]:
    """The first of :func:`resume_candidates` that is complete; each broken
    one before it is named, with the reason, in a warning. None if there is
    none."""
    for path in resume_candidates(work_dir):
        reason = why_not_resumable(path)
        if reason is None:
            return path
        logger.warning(f'Not resuming from {path}: it does not load as a '
                       f'training checkpoint ({reason}). Trying the next '
                       'checkpoint with the most progress.')
    return None


def check_resume_path(path: str, work_dir: str) -> None:
    """Raise :class:`~mmkr.utils.CheckpointIntegrityError` if the checkpoint
    a user asked to resume from is not complete, naming it, the reason and
    the last complete checkpoint of its folder."""
    reason = why_not_resumable(path)
    if reason is None:
        return
    folder = osp.dirname(osp.abspath(path)) if '://' not in path else work_dir
    latest = next((candidate for candidate in resume_candidates(folder)
                   if osp.abspath(candidate) != osp.abspath(path)
                   and why_not_resumable(candidate) is None), None)
    advice = (f'The last complete checkpoint in {folder} is {latest}: '
              f'resume from it with --resume {latest}, or with --resume '
              'alone to pick the complete one with the most progress.'
              if latest is not None else
              f'{folder} holds no complete checkpoint to resume from.')
    raise CheckpointIntegrityError(
        f'Cannot resume from {path}: it does not load as a training '
        f'checkpoint ({reason}). {advice}')
