"""A checkpoint storage for tests/test_preemption.py that stops half-way
through the write of one file, so that the test kills the process exactly
during a checkpoint write.

The write is mmkr's own (``write_atomically``) on the real file system; only
its content arrives slowly: half of it is written and fsynced, a line says
so on stdout, and the process waits to be killed. Select it with
``default_hooks.checkpoint.backend_args=dict(backend='hanging_atomic_local',
hang_on=NAME)`` and ``custom_imports`` naming this module.
"""
import os
import os.path as osp
import time

from mmengine.fileio import register_backend

from mmkr.utils.atomic_file import AtomicLocalBackend, write_atomically

HANGING = 'HANGING IN THE WRITE OF'


@register_backend('hanging_atomic_local')
class HangingAtomicBackend(AtomicLocalBackend):
    """AtomicLocalBackend, except that the write of a file named ``hang_on``
    never finishes."""

    def __init__(self, hang_on: str):
        self.hang_on = hang_on

    def put(self, obj: bytes, filepath) -> None:
        if osp.basename(filepath) != self.hang_on:
            return super().put(obj, filepath)

        def write_half(f) -> None:
            f.write(obj[:len(obj) // 2])
            f.flush()
            os.fsync(f.fileno())
            print(f'{HANGING} {filepath}', flush=True)
            time.sleep(600)

        write_atomically(filepath, write_half)
