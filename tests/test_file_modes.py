"""Published checkpoints and cached downloads get the mode ``torch.save``
gives a file (0o666 less the umask), so that a web server running as
another user can serve them, and are still written through a staged file
that is moved into place only once complete."""
import os
import stat

import pytest
import torch

from mmkr.utils import cached_download, publish_checkpoint


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize('umask', [0o022, 0o027, 0o077])
def test_published_and_cached_files_have_the_mode_of_torch_save(
        tmp_path, umask):
    checkpoint = dict(meta=dict(epoch=1), state_dict=dict(w=torch.ones(3)))
    publish_dir, cache_dir = tmp_path / 'zoo', tmp_path / 'cache'
    previous = os.umask(umask)
    try:
        reference = tmp_path / 'torch_save.pth'
        torch.save(checkpoint, reference)
        published = publish_checkpoint(checkpoint, str(publish_dir / 'kr'))
        # urllib reads file:// URLs as a web server would send the file
        cached = cached_download(f'file://{published}', str(cache_dir))
    finally:
        os.umask(previous)
    assert mode(reference) == 0o666 & ~umask
    assert mode(published) == mode(cached) == mode(reference)
    # nothing staged is left behind
    assert os.listdir(publish_dir) == [os.path.basename(published)]
    assert os.listdir(cache_dir) == [os.path.basename(published)]
