"""End to end with the real tools, as a user runs them, on CPU.

The digits converter writes a small real dataset; ``tools/dist_train.sh``
trains the demo config on two gloo processes under torchrun, validates and
checkpoints; ``--resume`` from the epoch-1 checkpoint ends at the state of
the uninterrupted run; ``tools/test.py`` and ``tools/dist_test.sh`` evaluate
the checkpoint. mmkr's local checkpoint loader keeps
``torch.load(weights_only=True)`` and refuses foreign pickled objects.
"""
import os
import os.path as osp
import pickle
import re
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import CheckpointLoader
from PIL import Image
from sklearn.datasets import load_digits

from mmkr.utils import (MMENGINE_CHECKPOINT_GLOBALS, init_cpu_distributed,
                        load_from_local)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = 'configs/demo/resnet18_kr4_digits.py'
CONVERTER = 'tools/dataset_converters/prepare_digits_demo.py'
# 6 digits per class: 48 train, 12 val images; 2 processes x 8 = 3 iterations
# per epoch
PER_CLASS = 6


def run(*args: str, port: int = None) -> str:
    """Run a tool from the repository root with this interpreter first on
    PATH (the shell scripts call ``python``); return stdout and stderr."""
    env = dict(os.environ)
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    if port is not None:
        env['PORT'] = str(port)
    proc = subprocess.run(
        args,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900)
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(args)} exited with '
                             f'{proc.returncode}:\n{proc.stdout[-5000:]}')
    return proc.stdout


def fails(*args: str) -> str:
    proc = subprocess.run((sys.executable, ) + args,
                          cwd=REPO,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)
    assert proc.returncode != 0, proc.stdout
    return proc.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def files_of(root: str) -> dict:
    """relative path -> bytes of every file under ``root``."""
    out = {}
    for base, _, names in os.walk(root):
        for name in names:
            path = osp.join(base, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


def accuracy(log: str) -> float:
    found = re.findall(r'accuracy/top1: ([\d.]+)', log)
    assert found, log[-3000:]
    return float(found[-1])


def data_options(root: str) -> list:
    return [
        f'{split}_dataloader.dataset.data_root={root}'
        for split in ('train', 'val', 'test')
    ]


def test_prepare_digits_writes_real_images_and_refuses_to_overwrite(
        tmp_path):
    out = str(tmp_path / 'digits')
    run(sys.executable, CONVERTER, '--out-dir', out, '--per-class', '5')
    written = files_of(out)
    pngs = sorted(name for name in written if name.endswith('.png'))
    assert len(pngs) == 50
    for split, count in (('train', 40), ('val', 10)):
        in_split = [p for p in pngs if p.startswith(split + os.sep)]
        assert len(in_split) == count
        # stratified: every class in both splits
        assert {p.split(os.sep)[1] for p in in_split} == set('0123456789')

    # each image is its digit (8x8, 0..16) upscaled by 4, grey in RGB
    digits = load_digits()
    name = pngs[0]
    label, index = int(name.split(os.sep)[1]), int(osp.basename(name)[:-4])
    image = np.asarray(Image.open(osp.join(out, name)))
    assert image.shape == (32, 32, 3) and digits.target[index] == label
    expected = np.round(digits.images[index] * 255 / 16).astype(np.uint8)
    np.testing.assert_array_equal(image[::4, ::4, 0], expected)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])

    # the same options again: already there, nothing written
    log = run(sys.executable, CONVERTER, '--out-dir', out, '--per-class',
              '5')
    assert 'nothing to do' in log and files_of(out) == written

    # other options: refused, nothing changed
    log = fails(CONVERTER, '--out-dir', out, '--size', '16')
    assert 'refusing to overwrite' in log and files_of(out) == written

    # --force replaces only the converter's own files; a user's file blocks
    user_file = osp.join(out, 'train', 'notes.txt')
    with open(user_file, 'w') as f:
        f.write('mine')
    log = fails(CONVERTER, '--out-dir', out, '--size', '16', '--force')
    assert 'train/notes.txt' in log
    assert files_of(out) == dict(written, **{'train/notes.txt': b'mine'})

    os.remove(user_file)
    run(sys.executable, CONVERTER, '--out-dir', out, '--per-class', '5',
        '--size', '16', '--force')
    assert np.asarray(Image.open(osp.join(out, name))).shape == (16, 16, 3)
    assert sorted(files_of(out)) == sorted(written)


def test_dist_train_resume_and_test(tmp_path):
    data = str(tmp_path / 'digits')
    run(sys.executable, CONVERTER, '--out-dir', data, '--per-class',
        str(PER_CLASS))
    options = data_options(data) + [
        'train_dataloader.batch_size=8', 'train_cfg.max_epochs=2',
        'default_hooks.logger.interval=1'
    ]

    # two processes, gloo (no CUDA here), torchrun
    full = str(tmp_path / 'full')
    log = run(
        'bash',
        'tools/dist_train.sh',
        CONFIG,
        '2',
        '--work-dir',
        full,
        '--cfg-options',
        *options,
        port=free_port())
    assert "dist_cfg=dict(backend='gloo')" in log
    assert 'Epoch(train) [2][3/3]' in log  # 48 images / (2 x 8) per epoch
    assert 'Epoch(val) [2][1/1]' in log
    assert osp.isfile(osp.join(full, 'epoch_1.pth'))

    # resume from the epoch-1 checkpoint in a fresh work dir
    resumed = str(tmp_path / 'resumed')
    log = run(
        'bash',
        'tools/dist_train.sh',
        CONFIG,
        '2',
        '--work-dir',
        resumed,
        '--resume',
        osp.join(full, 'epoch_1.pth'),
        '--cfg-options',
        *options,
        port=free_port())
    assert 'resumed epoch: 1, iter: 3' in log
    assert 'Epoch(train) [1]' not in log

    expected = load_from_local(osp.join(full, 'epoch_2.pth'))
    actual = load_from_local(osp.join(resumed, 'epoch_2.pth'))
    assert actual['meta']['epoch'] == 2 and actual['meta']['iter'] == 6
    assert actual['state_dict'].keys() == expected['state_dict'].keys()
    for key, value in expected['state_dict'].items():
        assert torch.equal(actual['state_dict'][key], value), key
    assert actual['optimizer']['param_groups'] == expected['optimizer'][
        'param_groups']
    assert actual['optimizer']['state'].keys() == expected['optimizer'][
        'state'].keys()
    for index, state in expected['optimizer']['state'].items():
        for name, value in state.items():
            assert torch.equal(actual['optimizer']['state'][index][name],
                               value), (index, name)
    assert actual['param_schedulers'] == expected['param_schedulers']

    # the checkpoint evaluates alike in one process and in two
    checkpoint = osp.join(resumed, 'epoch_2.pth')
    single = accuracy(
        run(sys.executable, 'tools/test.py', CONFIG, checkpoint,
            '--work-dir', str(tmp_path / 'test'), '--cfg-options',
            *data_options(data)))
    double = accuracy(
        run('bash',
            'tools/dist_test.sh',
            CONFIG,
            checkpoint,
            '2',
            '--work-dir',
            str(tmp_path / 'dist_test'),
            '--cfg-options',
            *data_options(data),
            port=free_port()))
    assert 0 <= single <= 100 and single == double


class WritesAFile:
    """A pickled object whose unpickling writes a file: what a tampered
    checkpoint carries."""

    def __init__(self, source, target):
        self.files = (source, target)

    def __reduce__(self):
        return shutil.copyfile, self.files


class AsksForAttribute:
    """Unpickles as getattr(HistoryBuffer, '__init__'): getattr beyond the
    statistics methods mmengine pickles."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


def test_train_amp_on_cpu_50_iterations_finite(tmp_path):
    """``tools/train.py --amp`` without CUDA trains under bfloat16 autocast
    (mmkr's CPUAmpOptimWrapper): 50 logged iterations of the demo config on
    real digits, every loss finite, and the saved weights finite."""
    data = str(tmp_path / 'digits')
    # 10 digits per class: 80 train images, 10 iterations of 8 per epoch
    run(sys.executable, CONVERTER, '--out-dir', data, '--per-class', '10')
    work_dir = str(tmp_path / 'amp')
    log = run(
        sys.executable, 'tools/train.py', CONFIG, '--amp', '--work-dir',
        work_dir, '--cfg-options', *data_options(data),
        'train_dataloader.batch_size=8', 'train_cfg.max_epochs=5',
        'train_cfg.val_interval=5', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=5')
    assert "type='CPUAmpOptimWrapper'" in log
    losses = [float(v) for v in re.findall(r' loss: (\S+)', log)]
    assert len(losses) == 50
    assert all(np.isfinite(losses)), losses
    state = load_from_local(osp.join(work_dir, 'epoch_5.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point())


def test_local_loader_allows_mmengine_checkpoints_only(tmp_path):
    hub = MessageHub.get_instance('test_local_loader')
    hub.update_scalar('train/loss', 0.5)
    hub.update_scalar('train/loss', 0.25)
    hub.update_info('eta', np.float64(3.0))
    path = str(tmp_path / 'training.pth')
    torch.save(
        dict(
            meta=dict(epoch=1),
            state_dict=dict(w=torch.ones(2)),
            message_hub=hub.state_dict()), path)

    loaded = CheckpointLoader.load_checkpoint(path)
    buffer = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.mean() == 0.375
    assert loaded['message_hub']['runtime_info']['eta'] == 3.0
    # the allow-list lives only inside the loader: torch.load's own
    # weights_only default still refuses the file
    assert not set(MMENGINE_CHECKPOINT_GLOBALS) & set(
        torch.serialization.get_safe_globals())
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)

    marker = str(tmp_path / 'ran')
    tampered = str(tmp_path / 'tampered.pth')
    torch.save(
        dict(state_dict=dict(w=torch.ones(2)), meta=WritesAFile(path, marker)),
        tampered)
    with pytest.raises(pickle.UnpicklingError,
                       match='shutil.copyfile.*weights_only=True'):
        CheckpointLoader.load_checkpoint(tampered)
    assert not osp.exists(marker)

    probing = str(tmp_path / 'probing.pth')
    torch.save(dict(meta=AsksForAttribute()), probing)
    with pytest.raises(pickle.UnpicklingError, match="'__init__'"):
        load_from_local(probing)


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='mmengine starts CUDA jobs itself')
def test_cpu_launcher_needs_torchrun(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(RuntimeError, match='RANK, WORLD_SIZE, MASTER_ADDR'):
        init_cpu_distributed(Config(dict(launcher='pytorch')))
