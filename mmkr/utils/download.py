"""Safe download and loading of http(s) checkpoints.

mmengine loads http(s) checkpoints through torch.hub, which caches whatever
the server sent and unpickles it with ``weights_only=False``: a tampered or
broken download can run code or poison the cache. :func:`load_from_http`
replaces that loader (see :func:`register_http_loader`) for everything that
goes through mmengine's ``CheckpointLoader``: ``load_checkpoint``,
``init_cfg=dict(type='Pretrained')``, ``load_from`` and
``mmpretrain.get_model(..., pretrained=...)``.

Rules:

- the file name must carry the first 8 or more hex digits of the file's
  sha256 (``name-{hash8}.pth``, mmpretrain's convention);
- a download goes to a temporary file next to the cache and is moved into the
  cache (torch.hub's ``<hub_dir>/checkpoints``) only when it is complete and
  its hash matches, so nothing in the cache is overwritten by a bad download;
- a cached file is checked again before every load;
- the file is unpickled with ``weights_only=True``: only tensors and plain
  containers, which is all a published checkpoint (``meta`` + ``state_dict``)
  holds.
"""
import hashlib
import http.client
import os
import os.path as osp
import pickle
import re
import tempfile
import urllib.request
from contextlib import contextmanager
from typing import Iterator, Optional
from urllib.parse import urlparse

import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader

HASH_PATTERN = re.compile(r'-([0-9a-f]{8,64})\.[A-Za-z0-9]+$')
CHUNK_SIZE = 1 << 20


class CheckpointIntegrityError(RuntimeError):
    """A checkpoint that is incomplete, altered or not a checkpoint."""


def default_cache_dir() -> str:
    """torch.hub's checkpoint cache, as torch.hub and mmengine use it."""
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def expected_hash(url: str) -> str:
    """The sha256 prefix in ``url``'s file name (``name-{hash}.ext``)."""
    filename = osp.basename(urlparse(url).path)
    match = HASH_PATTERN.search(filename)
    if match is None:
        raise CheckpointIntegrityError(
            f'cannot verify {url}: its file name {filename!r} carries no '
            'sha256 prefix (expected name-<8+ hex digits>.pth, as written by '
            'tools/model_converters/publish_model.py). Download it yourself '
            'and pass the local path if you trust it.')
    return match.group(1)


def sha256_of(path: str) -> str:
    """Hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK_SIZE), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _download_to(url: str, path: str, timeout: float) -> None:
    """Streams ``url`` into ``path``; raises if fewer bytes arrive than the
    server announced."""
    with urllib.request.urlopen(url, timeout=timeout) as response, \
            open(path, 'wb') as f:
        announced = response.headers.get('Content-Length')
        received = 0
        try:
            for chunk in iter(lambda: response.read(CHUNK_SIZE), b''):
                f.write(chunk)
                received += len(chunk)
        except http.client.IncompleteRead as error:
            received += len(error.partial)
    if announced is not None and received != int(announced):
        raise CheckpointIntegrityError(
            f'download of {url} is truncated: received {received} of '
            f'{announced} bytes; the cache was left untouched')


def umask_file_mode() -> int:
    """The mode ``open(path, 'w')`` (and so ``torch.save``) gives a new
    file: 0o666 less the process's umask."""
    # os.umask can only be read by setting it; set it straight back.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def staged_file(directory: str, **mkstemp_args) -> Iterator[str]:
    """A temporary file in ``directory`` for a write that is moved into its
    final place only once complete and verified; whatever is left of it
    (a failed or refused write) is removed on exit.

    mkstemp creates the file with mode 0o600; it gets the mode a plain
    ``open`` would give (:func:`umask_file_mode`) so that the file moved
    into place, a published checkpoint or a cached download, is as
    readable as one written by ``torch.save``: a web server running as
    another user can serve it.
    """
    fd, path = tempfile.mkstemp(dir=directory, **mkstemp_args)
    os.close(fd)
    try:
        os.chmod(path, umask_file_mode())
        yield path
    finally:
        if osp.exists(path):
            os.remove(path)


def cached_download(url: str, model_dir: Optional[str] = None,
                    timeout: float = 60.) -> str:
    """The verified local copy of ``url``, downloading it if needed.

    Returns the path of ``<model_dir>/<file name>``. Raises
    :class:`CheckpointIntegrityError` if the file name has no hash, the
    download is truncated or its sha256 does not start with the name's hash
    (the temporary file is deleted, the cache is unchanged), or if a cached
    copy no longer matches its name (it is left for the user to inspect).
    """
    prefix = expected_hash(url)
    model_dir = model_dir or default_cache_dir()
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    if osp.exists(cached):
        actual = sha256_of(cached)
        if not actual.startswith(prefix):
            raise CheckpointIntegrityError(
                f'cached checkpoint {cached} does not match the sha256 prefix '
                f'{prefix} in its name (sha256 {actual}): it changed after '
                'download. Delete it to download it again.')
        return cached

    print_log(f'Downloading {url} to {cached}', logger='current')
    with staged_file(model_dir, prefix=f'.{osp.basename(cached)}.',
                     suffix='.part') as partial:
        _download_to(url, partial, timeout)
        actual = sha256_of(partial)
        if not actual.startswith(prefix):
            raise CheckpointIntegrityError(
                f'refused {url}: its sha256 is {actual}, the file name says '
                f'{prefix}. The file is corrupted or was replaced; the cache '
                'was left untouched.')
        # Another process may have put the verified file there meanwhile.
        if not osp.exists(cached):
            os.replace(partial, cached)
    return cached


def load_weights(path: str, map_location=None,
                 state_key: str = 'state_dict') -> dict:
    """``torch.load(path, weights_only=True)`` with errors that say what is
    wrong with the file; checks that it holds a state dict of tensors
    (bare, or under ``state_key``: ``'model'`` in the checkpoints of
    ConvNeXt's training script)."""
    try:
        checkpoint = torch.load(
            path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        # torch names an unlisted global 'Unsupported global: GLOBAL x',
        # one of a module it blocks (os, posix, ...) 'unsupported GLOBAL x'
        found = re.search(r'[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)',
                          str(error))
        if found is None:
            raise CheckpointIntegrityError(
                f'{path} is not a readable PyTorch checkpoint (truncated or '
                f'not a checkpoint at all): {str(error)[:200]}') from error
        raise CheckpointIntegrityError(
            f'{path} holds Python objects besides tensors and plain '
            f'containers (first: {found.group(1)}), which can run code when '
            'unpickled; it was refused (weights_only=True). Publish '
            'checkpoints with tools/model_converters/publish_model.py, which '
            'keeps only meta and state_dict.') from error
    except Exception as error:
        raise CheckpointIntegrityError(
            f'{path} is not a readable PyTorch checkpoint (truncated or not '
            f'a checkpoint at all): {type(error).__name__}: {error}'
        ) from error
    state_dict = (checkpoint.get(state_key, checkpoint)
                  if isinstance(checkpoint, dict) else checkpoint)
    if not (isinstance(state_dict, dict) and state_dict and all(
            isinstance(k, str) and isinstance(v, torch.Tensor)
            for k, v in state_dict.items())):
        entries = (f' (its entries: {list(checkpoint)[:8]})'
                   if isinstance(checkpoint, dict) else '')
        raise CheckpointIntegrityError(
            f'{path} is not a checkpoint: expected a state dict of tensors '
            f'(bare or under "{state_key}"), found a '
            f'{type(state_dict).__name__}{entries}')
    return checkpoint


def load_from_http(filename: str, map_location=None,
                   model_dir: Optional[str] = None) -> dict:
    """mmengine's http(s) checkpoint loader, made safe (see module doc).

    In a distributed job local rank 0 downloads first and the other ranks
    read the verified cache after a barrier.
    """
    rank, world_size = get_dist_info()
    if rank == 0:
        path = cached_download(filename, model_dir)
    if world_size > 1:
        barrier()
        if rank > 0:
            path = cached_download(filename, model_dir)
    return load_weights(path, map_location)


def register_http_loader() -> None:
    """Make :func:`load_from_http` mmengine's loader for http:// and
    https:// (replacing torch.hub's unchecked, ``weights_only=False`` one)."""
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http, force=True)
