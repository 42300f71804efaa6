"""A checkpoint storage for tests/test_runs.py on which one write finds the
disk full, as ``write(2)`` reports it: ``OSError(ENOSPC)``.

The write is mmkr's own (``write_atomically``) on the real file system: half
of the content reaches the staged file, then the error is raised from inside
the write, so mmkr's clean-up runs as it would on a full disk. Select it with
``default_hooks.checkpoint.backend_args=dict(backend='full_atomic_local',
fail_on=NAME, occurrence=N)`` (the N-th write of a file named NAME fails)
and ``custom_imports`` naming this module.
"""
import errno
import os
import os.path as osp
from collections import Counter

from mmengine.fileio import register_backend

from mmkr.utils.atomic_file import AtomicLocalBackend, write_atomically

# writes per file name in this process; the backend is built once per save
WRITES = Counter()


@register_backend('full_atomic_local')
class FullDiskAtomicBackend(AtomicLocalBackend):
    """AtomicLocalBackend whose ``occurrence``-th write of ``fail_on`` fails
    with ENOSPC half-way."""

    def __init__(self, fail_on: str, occurrence: int = 1):
        self.fail_on = fail_on
        self.occurrence = occurrence

    def put(self, obj: bytes, filepath) -> None:
        name = osp.basename(filepath)
        WRITES[name] += 1
        if name != self.fail_on or WRITES[name] != self.occurrence:
            return super().put(obj, filepath)

        def write_half_then_fill_the_disk(f) -> None:
            f.write(obj[:len(obj) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filepath)

        write_atomically(filepath, write_half_then_fill_the_disk)
