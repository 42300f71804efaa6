"""One training run per work dir at a time.

Two runs on one work dir write one timestamped log folder (each line twice)
and overwrite each other's checkpoints. :class:`WorkDirLock` makes the work
dir the property of one run: a lock file ``WORK_DIR/.mmkr-run.lock``,
created exclusively, holds the owner's pid, host and command line. A second
run is refused with a message naming them. A lock left by a process that no
longer exists on this host (a SIGKILL, a crash of the machine) is stale and
taken over with a warning; a lock of another host is taken for live, as
this host cannot see its processes.
"""
import json
import logging
import os
import os.path as osp
import socket
import sys
import time
import uuid
from contextlib import nullcontext
from typing import Optional

from mmengine.logging import print_log

LOCK_NAME = '.mmkr-run.lock'


class WorkDirBusyError(RuntimeError):
    """The work dir is owned by another run."""


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


class WorkDirLock:
    """The lock of ``work_dir`` for this process, as a context manager.

    Args:
        work_dir (str): the folder the run writes into (made if missing).
    """

    def __init__(self, work_dir: str):
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK_NAME)
        self._owned = False

    def _owner(self) -> Optional[dict]:
        """What the lock file says, or None if there is none (or it is being
        written)."""
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except ValueError:  # created, not yet written: live
            return {}

    def acquire(self) -> None:
        """Take the lock, or raise :class:`WorkDirBusyError` naming the run
        that holds it. A stale lock of this host is taken over."""
        os.makedirs(self.work_dir, exist_ok=True)
        me = dict(pid=os.getpid(),
                  host=socket.gethostname(),
                  command=' '.join(sys.argv),
                  started=time.strftime('%Y-%m-%d %H:%M:%S'))
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is None:  # released meanwhile
                    continue
                if not self._stale(owner):
                    raise WorkDirBusyError(
                        f'{self.work_dir} is in use by another run (pid '
                        f'{owner.get("pid", "?")} on host '
                        f'{owner.get("host", "?")}, started '
                        f'{owner.get("started", "?")}: '
                        f'{owner.get("command", "?")}). Give this run its '
                        'own --work-dir, or wait for that run to end. If it '
                        f'is gone, remove {self.path}.') from None
                self._take_over(owner)
                continue
            with os.fdopen(fd, 'w') as f:
                json.dump(me, f)
            self._owned = True
            return
        raise WorkDirBusyError(f'could not take the lock {self.path}: other '
                               'runs keep taking it')

    def _stale(self, owner: dict) -> bool:
        return (owner.get('host') == socket.gethostname()
                and isinstance(owner.get('pid'), int)
                and not _alive(owner['pid']))

    def _take_over(self, owner: dict) -> None:
        """Remove a stale lock. It is renamed aside first, so that of two
        runs taking it over at once only one removes it."""
        aside = f'{self.path}.{uuid.uuid4().hex[:8]}.stale'
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        os.remove(aside)
        print_log(
            f'Took over {self.path}: its run (pid {owner["pid"]} on '
            f'{owner["host"]}: {owner.get("command", "?")}) no longer '
            'exists.',
            logger='current',
            level=logging.WARNING)

    def release(self) -> None:
        if self._owned:
            self._owned = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> 'WorkDirLock':
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


# where each mmengine launcher gives a process its global rank
_RANK_VARIABLES = dict(
    pytorch='RANK', slurm='SLURM_PROCID', mpi='OMPI_COMM_WORLD_RANK')


def lock_for_run(work_dir: str, launcher: str = 'none'):
    """The lock of ``work_dir`` for the process that owns a run (rank 0 of
    a distributed job, read from the launcher's environment before the
    process group exists), a context that does nothing for the others."""
    variable = _RANK_VARIABLES.get(launcher)
    rank = int(os.environ.get(variable, 0)) if variable else 0
    return WorkDirLock(work_dir) if rank == 0 else nullcontext()
