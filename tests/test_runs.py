"""Training runs on real work dirs, as tools/train.py makes them: one run
owns a work dir at a time, a copied work dir resumes from its own files, a
resume without last_checkpoint takes the checkpoint with the most training
done, a save that finds the disk full leaves no orphan and says so in the
run's log, and an epoch whose last batch holds one sample does not crash.

The job is the digits demo at 16x16 and half its width (40 training images,
batches of 8), whose last stages see 1x1 maps: a batch of one sample there
stops BatchNorm.
"""
import glob
import os
import os.path as osp
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch
from mmengine.logging import MMLogger

from mmkr.engine import PREEMPTED_EXIT_CODE
from mmkr.engine.runner import latest_complete_checkpoint
from mmkr.utils import WorkDirBusyError, WorkDirLock

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TIMEOUT = 240  # seconds any one process may take

CONFIG = """\
_base_ = '{repo}/configs/demo/resnet18_kr4_digits.py'
custom_imports = dict(
    imports=['mmkr', 'full_disk_write'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        backbone=dict(stem_channels=8, base_channels=8), probe_size=(16, 16)),
    head=dict(in_channels=64))
train_dataloader = dict(
    batch_size=8, num_workers=0, dataset=dict(data_root='{data}'))
val_dataloader = dict(num_workers=0, dataset=dict(data_root='{data}'))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=2)
custom_hooks = [dict(type='KRTemperatureHook', anneal_epochs=1)]
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
default_hooks = dict(logger=dict(interval=1))
"""


@pytest.fixture(scope='module')
def config(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('runs')
    data = str(root / 'digits')
    subprocess.run([
        sys.executable, 'tools/dataset_converters/prepare_digits_demo.py',
        '--out-dir', data, '--per-class', '5', '--size', '16'
    ],
                   cwd=REPO,
                   check=True,
                   capture_output=True,
                   timeout=TIMEOUT)
    path = root / 'runs_digits.py'
    path.write_text(CONFIG.format(repo=REPO, data=data))
    return str(path)


def train(work_dir, config, *options, wait=True):
    """tools/train.py CONFIG --work-dir WORK_DIR OPTIONS: the finished
    process (its output in ``stdout``), or the running one."""
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join(
        filter(None, [osp.join(REPO, 'tests'),
                      env.get('PYTHONPATH')]))
    args = [
        sys.executable, 'tools/train.py', config, '--work-dir',
        str(work_dir), *options
    ]
    if not wait:
        return subprocess.Popen(args,
                                cwd=REPO,
                                env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                text=True)
    return subprocess.run(args,
                          cwd=REPO,
                          env=env,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=TIMEOUT)


def run_logs(work_dir) -> list:
    """The log files of the runs in ``work_dir``, one per run."""
    return sorted(glob.glob(osp.join(str(work_dir), '2*', '2*.log')))


def test_a_second_run_on_a_busy_work_dir_is_refused(config, tmp_path):
    work_dir = tmp_path / 'run'
    # long enough to be running whatever the machine's speed; stopped below
    first = train(work_dir, config, '--cfg-options',
                  'train_cfg.max_epochs=1000', wait=False)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not run_logs(work_dir):
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        second = train(work_dir, config)
    finally:
        first.send_signal(signal.SIGTERM)  # saves and exits with 75
        output, _ = first.communicate(timeout=TIMEOUT)
    assert first.returncode == PREEMPTED_EXIT_CODE, output[-3000:]
    assert second.returncode == 1
    assert (f'{work_dir} is in use by another run (pid {first.pid} on host '
            f'{socket.gethostname()}') in second.stdout, second.stdout
    assert len(run_logs(work_dir)) == 1  # the second made no log folder
    assert not osp.exists(work_dir / '.mmkr-run.lock')  # the first let go


def test_a_stale_lock_is_taken_over_and_a_live_one_is_not(tmp_path):
    ended = subprocess.Popen([sys.executable, '-c', ''])
    ended.wait()
    dead_pid = ended.pid
    lock_file = tmp_path / '.mmkr-run.lock'
    lock_file.write_text(f'{{"pid": {dead_pid}, "host": '
                         f'"{socket.gethostname()}", "command": "x"}}')
    with WorkDirLock(str(tmp_path)):
        assert f'"pid": {os.getpid()}' in lock_file.read_text()
        with pytest.raises(WorkDirBusyError, match=f'pid {os.getpid()}'):
            WorkDirLock(str(tmp_path)).acquire()
    assert not lock_file.exists()
    # another host's lock: its process cannot be seen, so it counts as live
    lock_file.write_text(f'{{"pid": {dead_pid}, "host": "elsewhere"}}')
    with pytest.raises(WorkDirBusyError, match='on host elsewhere'):
        WorkDirLock(str(tmp_path)).acquire()


def test_a_copied_work_dir_resumes_from_its_own_checkpoint(config, tmp_path):
    original = tmp_path / 'original'
    result = train(original, config, '--cfg-options', 'train_cfg.max_epochs=1')
    assert result.returncode == 0, result.stdout[-3000:]
    assert (original / 'last_checkpoint').read_text() == 'epoch_1.pth'
    copy = tmp_path / 'copy'
    shutil.copytree(original, copy)
    files = {path: os.stat(path).st_mtime_ns
             for path in glob.glob(str(original / '*'))}

    result = train(copy, config, '--resume')
    assert result.returncode == 0, result.stdout[-3000:]
    assert ('Auto resumed from the latest complete checkpoint '
            f'{copy / "epoch_1.pth"}') in result.stdout
    # nothing of the original was removed or rewritten
    assert {path: os.stat(path).st_mtime_ns
            for path in glob.glob(str(original / '*'))} == files
    assert (copy / 'epoch_2.pth').exists()


def test_an_old_absolute_last_checkpoint_still_reads(tmp_path):
    save(tmp_path / 'epoch_1.pth', epoch=1, iter=5)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    assert latest_complete_checkpoint(str(tmp_path), MMLogger(
        'old')) == str(tmp_path / 'epoch_1.pth')


def save(path, epoch: int, iter: int) -> None:
    torch.save(dict(meta=dict(epoch=epoch, iter=iter),
                    state_dict=dict(w=torch.zeros(1))), str(path))


def test_resume_without_last_checkpoint_takes_the_most_progress(tmp_path):
    """The newest file is not the furthest state: a checkpoint restored
    from a backup, or epoch_5.pth touched after epoch_6.pth was written."""
    save(tmp_path / 'epoch_6.pth', epoch=6, iter=60)
    save(tmp_path / 'iter_55.pth', epoch=5, iter=55)
    save(tmp_path / 'epoch_5.pth', epoch=5, iter=50)
    for age, name in enumerate(('epoch_5.pth', 'iter_55.pth', 'epoch_6.pth')):
        os.utime(tmp_path / name, (2e9 - age, 2e9 - age))
    (tmp_path / 'last_checkpoint').write_text('epoch_7.pth')  # gone
    logger = MMLogger('progress')
    assert latest_complete_checkpoint(str(tmp_path),
                                      logger) == str(tmp_path / 'epoch_6.pth')
    os.remove(tmp_path / 'epoch_6.pth')
    assert latest_complete_checkpoint(str(tmp_path),
                                      logger) == str(tmp_path / 'iter_55.pth')


def test_a_save_on_a_full_disk_leaves_no_orphan_and_is_logged(
        config, tmp_path):
    """The disk fills while epoch_1.pth is written again to record the new
    best checkpoint: the best checkpoint that nothing records goes too."""
    work_dir = tmp_path / 'run'
    result = train(work_dir, config, '--cfg-options',
                   'default_hooks.checkpoint.backend_args.backend='
                   'full_atomic_local',
                   'default_hooks.checkpoint.backend_args.fail_on='
                   'epoch_1.pth',
                   'default_hooks.checkpoint.backend_args.occurrence=2')
    assert result.returncode == 1, result.stdout[-3000:]
    assert 'No space left on device' in result.stdout
    # no best checkpoint, no staged part, no lock left
    names = os.listdir(work_dir)
    assert sorted(name for name in names
                  if name.endswith('.pth') or name.startswith('.')) == [
                      'epoch_1.pth'
                  ], names
    assert (work_dir / 'last_checkpoint').read_text() == 'epoch_1.pth'
    [log] = run_logs(work_dir)
    with open(log) as f:
        text = f.read()
    assert re.search(r'Training stopped by an error:\nTraceback.*'
                     r'OSError: \[Errno 28\] No space left on device', text,
                     re.DOTALL), text[-3000:]

    result = train(work_dir, config, '--resume')
    assert result.returncode == 0, result.stdout[-3000:]
    checkpoints = sorted(glob.glob(str(work_dir / '*.pth')))
    best = [path for path in checkpoints if 'best_' in path]
    assert len(best) == 1 and best[0].endswith('_epoch_2.pth'), checkpoints


def test_a_last_batch_of_one_sample_is_dropped(config, tmp_path):
    """40 training images in batches of 3: the 14th batch would hold one."""
    result = train(tmp_path / 'run', config, '--cfg-options',
                   'train_cfg.max_epochs=1',
                   'train_dataloader.batch_size=3')
    assert result.returncode == 0, result.stdout[-3000:]
    assert ('The last training batch of each epoch would hold 1 of the 40 '
            'samples of a process (batch_size=3), which BatchNorm cannot '
            'normalise in training: it is dropped (13 batches per epoch).'
            ) in result.stdout
    assert 'Epoch(train) [1][13/13]' in result.stdout
