"""Writing a local file so that a kill at any moment leaves either the old
file or the complete new one, never a part.

:func:`write_atomically` stages the content next to the target, makes it
durable and renames it into place; :class:`AtomicLocalBackend` is mmengine's
local file backend with its writes made that way (registered as
``'atomic_local'``), which ``backend_args=dict(backend='atomic_local')``
selects wherever mmengine writes through a backend, checkpoints included.
"""
import os
import os.path as osp
import re
from pathlib import Path
from typing import IO, Any, Callable, List, Union

from mmengine.fileio import LocalBackend, register_backend

from .download import staged_file

# ``.{target name}.{8 random characters}.part``: staged_file's name for the
# staged copy of ``target``; what a killed write leaves behind.
STAGED_NAME = re.compile(r'^\.(?P<target>.+)\.[a-z0-9_]{8}\.part$')


def _fsync_directory(directory: str) -> None:
    """Make the entries of ``directory`` (a rename into it) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Union[str, Path], write: Callable[[IO[bytes]],
                                                             Any]) -> None:
    """Replace ``path`` by what ``write(f)`` writes into a binary file.

    ``write`` fills a staged file in the same folder (``.{name}.XXXXXXXX
    .part``), which is flushed and fsynced, then renamed over ``path``
    (atomic within one file system); the folder is fsynced last, so that the
    rename survives a crash of the machine too. Until the rename ``path`` is
    untouched: if ``write`` raises, the staged file is removed; if the
    process is killed, it stays behind, a name :data:`STAGED_NAME` matches
    (see :func:`remove_staged_leftovers`).
    """
    path = osp.abspath(path)
    directory = osp.dirname(path)
    os.makedirs(directory, exist_ok=True)
    with staged_file(directory,
                     prefix=f'.{osp.basename(path)}.',
                     suffix='.part') as staged:
        with open(staged, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staged, path)
    _fsync_directory(directory)


def remove_staged_leftovers(directory: str) -> List[str]:
    """Remove the staged files that killed writes left in ``directory``
    (names :data:`STAGED_NAME` matches) and return their paths."""
    if not osp.isdir(directory):
        return []
    removed = []
    for name in sorted(os.listdir(directory)):
        path = osp.join(directory, name)
        if STAGED_NAME.match(name) and osp.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose writes (``put``, ``put_text``) go
    through :func:`write_atomically`; reading, listing and removing are
    unchanged."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        write_atomically(filepath, lambda f: f.write(obj))

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)
