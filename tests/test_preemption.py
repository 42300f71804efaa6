"""Preemption with real processes: training killed at chosen moments ends,
after ``--resume``, exactly where an uninterrupted run ends.

The job is the digits demo at 16x16 and half its width, with 40 training
images, 3 epochs of 5 batches of 8 (3 per process with two), and random
numbers in its training (drop path in the backbone, random crops in the main
process), so that a resume that changed the random states or the batch order
would show. Every process is started in a session of its own and signalled
as a scheduler signals a job: the whole process group. A kill during a
checkpoint write uses tests/hanging_write.py, which stops a real write
half-way so that SIGKILL lands inside it. The dist test trains two epochs,
each rank with random numbers of its own (``diff_rank_seed``), so that a
resume that gave a rank another rank's random states would show. The jobs
import mmkr from the checkout under test.
"""
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
from filelock import FileLock
from torch.utils.data import DataLoader, Dataset

from mmkr.engine import PREEMPTED_EXIT_CODE
from mmkr.engine.runner.resumable_loop import RESUME_STATE, batches_after
from mmkr.utils import load_from_local, write_atomically

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
HANGING = 'HANGING IN THE WRITE OF'  # tests/hanging_write.py's line
TIMEOUT = 240  # seconds any one process may take

CONFIG = """\
_base_ = '{repo}/configs/demo/resnet18_kr4_digits.py'
custom_imports = dict(
    imports=['mmkr', 'hanging_write'], allow_failed_imports=False)
model = dict(
    backbone=dict(
        backbone=dict(stem_channels=8, base_channels=8, drop_path_rate=0.2),
        probe_size=(16, 16)),
    head=dict(in_channels=64))
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    dataset=dict(data_root='{data}', pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='RandomCrop', crop_size=16, padding=2),
        dict(type='PackInputs'),
    ]))
val_dataloader = dict(num_workers=1, dataset=dict(data_root='{data}'))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=3)
custom_hooks = [dict(type='KRTemperatureHook', anneal_epochs=1)]
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(max_keep_ckpts=3))
"""


def hang_on(name: str) -> list:
    """train.py options that stop the write of checkpoint ``name`` half-way
    (tests/hanging_write.py)."""
    return [
        '--cfg-options',
        'default_hooks.checkpoint.backend_args.backend=hanging_atomic_local',
        f'default_hooks.checkpoint.backend_args.hang_on={name}'
    ]


class Job:
    """A training command run from the repository root in a process group
    of its own, its output in ``log``."""

    def __init__(self, log: str, *args: str, port: int = None):
        env = dict(os.environ, PYTHONUNBUFFERED='1')
        env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
        env['PYTHONPATH'] = os.pathsep.join([REPO, osp.join(REPO, 'tests')])
        if port is not None:
            env['PORT'] = str(port)
        self.log = log
        self.args = args
        with open(log, 'w') as out:
            self.proc = subprocess.Popen(args,
                                         cwd=REPO,
                                         env=env,
                                         stdout=out,
                                         stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.deadline = time.monotonic() + TIMEOUT

    def output(self) -> str:
        with open(self.log) as f:
            return f.read()

    def fail(self, why: str):
        self.signal(signal.SIGKILL)
        raise AssertionError(f'{" ".join(self.args)}: {why}\n'
                             f'{self.output()[-5000:]}')

    def wait_for(self, pattern: str) -> None:
        """Return once ``pattern`` (a regex) is in the output."""
        while not re.search(pattern, self.output()):
            if self.proc.poll() is not None:
                self.fail(f'exited with {self.proc.returncode} before '
                          f'printing {pattern!r}')
            if time.monotonic() > self.deadline:
                self.fail(f'no {pattern!r} within {TIMEOUT} s')
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to every process of the job (a no-op once all have
        exited)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def finish(self, expected: int = 0) -> str:
        """Wait for the job to exit with ``expected``; return its output."""
        try:
            code = self.proc.wait(max(1., self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.fail(f'still running after {TIMEOUT} s')
        if code != expected:
            self.fail(f'exited with {code}, expected {expected}')
        return self.output()

    def killed(self) -> None:
        """SIGKILL the whole job, as a node that dies, and reap it."""
        self.signal(signal.SIGKILL)
        self.proc.wait(TIMEOUT)


def train(work_dir: str, config: str, *options: str) -> Job:
    return Job(work_dir + '.log', sys.executable, 'tools/train.py', config,
               '--work-dir', work_dir, *options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def dist_train(work_dir: str, config: str, *options: str) -> Job:
    return Job(work_dir + '.log',
               'bash',
               'tools/dist_train.sh',
               config,
               '2',
               '--work-dir',
               work_dir,
               *options,
               port=free_port())


def last_checkpoint(work_dir: str) -> str:
    """The path last_checkpoint names (relative to the work dir)."""
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return osp.join(work_dir, f.read())


def staged_leftovers(work_dir: str) -> list:
    return sorted(name for name in os.listdir(work_dir)
                  if re.fullmatch(r'\..+\.pth\.\w{8}\.part', name))


def preemption_checkpoint(log: str, work_dir: str, iters: range) -> str:
    """The iter_N.pth the SIGTERM-ed run says it saved, N in ``iters``."""
    found = re.search(
        r'SIGTERM: saved the state after iteration (\d+) to '
        r'(\S+);', log)
    assert found, log[-3000:]
    step, path = int(found.group(1)), found.group(2)
    assert step in iters and path == osp.join(work_dir, f'iter_{step}.pth')
    assert last_checkpoint(work_dir) == path
    assert load_from_local(path)['meta']['iter'] == step
    return path


def assert_same_training_state(path: str, expected_path: str) -> None:
    """Weights, optimizer and schedulers of two checkpoints are bit-equal."""
    actual, expected = load_from_local(path), load_from_local(expected_path)
    differs = f'{path} differs from the uninterrupted run\'s {expected_path}'
    assert (actual['meta']['epoch'],
            actual['meta']['iter']) == (expected['meta']['epoch'],
                                        expected['meta']['iter']), differs
    assert actual['state_dict'].keys() == expected['state_dict'].keys()
    for key, value in expected['state_dict'].items():
        assert torch.equal(actual['state_dict'][key], value), (
            f'{differs} in the weights {key}')
    states = actual['optimizer']['state'], expected['optimizer']['state']
    assert states[0].keys() == states[1].keys()
    for index, state in states[1].items():
        for name, value in state.items():
            assert torch.equal(states[0][index][name], value), (
                f'{differs} in the optimizer state {name} of parameter '
                f'{index}')
    assert actual['param_schedulers'] == expected['param_schedulers'], (
        f'{differs} in the schedulers')


def prepare(root: str) -> str:
    """The digits and the test config under ``root``; the config's path.
    The config is written last: where it exists, the digits are complete."""
    data = osp.join(root, 'digits')
    subprocess.run([
        sys.executable, 'tools/dataset_converters/prepare_digits_demo.py',
        '--out-dir', data, '--per-class', '5', '--size', '16'
    ],
                   cwd=REPO,
                   check=True,
                   capture_output=True,
                   timeout=TIMEOUT)
    config = osp.join(root, 'preemption_digits.py')
    with open(config, 'w') as f:
        f.write(CONFIG.format(repo=REPO, data=data))
    return config


def shared_folder(tmp_path_factory, worker_id) -> str:
    """A folder of this session that all pytest-xdist workers see."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != 'master':  # the folder pytest-xdist's workers share
        root = root.parent
    return osp.join(root, 'preemption')


@pytest.fixture(scope='module')
def config(tmp_path_factory, worker_id) -> str:
    """The test config (on the digits it writes), made once."""
    root = shared_folder(tmp_path_factory, worker_id)
    with FileLock(root + '.config.lock'):
        path = osp.join(root, 'preemption_digits.py')
        if not osp.isfile(path):
            os.makedirs(root, exist_ok=True)
            prepare(root)
    return path


def made_once(root: str, name: str, last: str, job) -> str:
    """The work dir ``root/name`` of a run that ``job(work_dir)`` starts,
    run once per session: where its ``last`` checkpoint exists, it is
    complete."""
    work_dir = osp.join(root, name)
    with FileLock(work_dir + '.lock'):
        if not osp.isfile(osp.join(work_dir, last)):
            job(work_dir).finish()
    return work_dir


@pytest.fixture(scope='module')
def reference(config, tmp_path_factory, worker_id) -> str:
    """The work dir of the config's uninterrupted single-process run."""
    return made_once(shared_folder(tmp_path_factory, worker_id),
                     'uninterrupted', 'epoch_3.pth',
                     lambda work_dir: train(work_dir, config))


# the dist test's runs: two epochs, random numbers of each rank's own
DIST_OPTIONS = ('--cfg-options', 'train_cfg.max_epochs=2',
                'randomness.diff_rank_seed=True')


@pytest.fixture(scope='module')
def dist_reference(config, tmp_path_factory, worker_id) -> str:
    """The work dir of the config's uninterrupted two-process run
    (``DIST_OPTIONS``)."""
    return made_once(shared_folder(tmp_path_factory, worker_id),
                     'uninterrupted_dist', 'epoch_2.pth',
                     lambda work_dir: dist_train(work_dir, config,
                                                 *DIST_OPTIONS))


def test_sigterm_then_sigkill_during_a_write_end_as_uninterrupted(
        config, reference, tmp_path):
    work_dir = str(tmp_path / 'run')

    # SIGTERM in epoch 2, once the validation worker exists: the iteration
    # finishes, iter_N.pth is written and the run exits with 75
    run = train(work_dir, config)
    run.wait_for(r'Epoch\(train\) \[2\]\[2/5\]')
    run.signal(signal.SIGTERM)
    log = run.finish(expected=PREEMPTED_EXIT_CODE)
    preempted = preemption_checkpoint(log, work_dir, range(7, 11))

    # resumed inside epoch 2, then SIGKILL half-way through the write of
    # epoch_2.pth: nothing named epoch_2.pth, last_checkpoint unchanged
    run = train(work_dir, config, '--resume', *hang_on('epoch_2.pth'))
    run.wait_for(HANGING)
    run.killed()
    log = run.output()
    assert f'Auto resumed from the latest complete checkpoint {preempted}' \
        in log
    assert re.search(r'Resuming epoch 2 after its first \d of 5 batches', log)
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    assert last_checkpoint(work_dir) == preempted
    [leftover] = staged_leftovers(work_dir)
    assert leftover.startswith('.epoch_2.pth.')
    with pytest.raises(RuntimeError, match='central directory'):
        load_from_local(osp.join(work_dir, leftover))

    # resumed again from iter_N.pth, to the end
    log = train(work_dir, config, '--resume').finish()
    assert f'Removed {osp.join(work_dir, leftover)}' in log
    assert staged_leftovers(work_dir) == []
    # the SIGTERM checkpoint went once epoch_2.pth superseded it
    assert not osp.exists(preempted)
    assert last_checkpoint(work_dir) == osp.join(work_dir, 'epoch_3.pth')
    assert_same_training_state(osp.join(work_dir, 'epoch_3.pth'),
                               osp.join(reference, 'epoch_3.pth'))


def test_sigterm_in_two_processes_ends_as_uninterrupted(
        config, dist_reference, tmp_path):
    """tools/dist_train.sh: two gloo processes under torchrun, two epochs of
    3 batches each; SIGTERM to all of them (and to torchrun) in epoch 2."""
    work_dir = str(tmp_path / 'run')
    run = dist_train(work_dir, config, *DIST_OPTIONS)
    run.wait_for(r'Epoch\(train\) \[2\]\[1/3\]')
    run.signal(signal.SIGTERM)
    preempted = preemption_checkpoint(run.finish(expected=PREEMPTED_EXIT_CODE),
                                      work_dir, range(4, 7))
    ranks = load_from_local(preempted)['message_hub']['runtime_info'][
        RESUME_STATE]['random_states']
    assert len(ranks) == 2 and not torch.equal(
        ranks[0]['torch'], ranks[1]['torch']), (
            'the two ranks saved the same random state: a resume that gave '
            'a rank the other\'s could not show')

    log = dist_train(work_dir, config, '--resume', *DIST_OPTIONS).finish()
    assert f'Auto resumed from the latest complete checkpoint {preempted}' \
        in log
    assert not osp.exists(preempted)
    assert_same_training_state(osp.join(work_dir, 'epoch_2.pth'),
                               osp.join(dist_reference, 'epoch_2.pth'))


def test_broken_checkpoints_are_named_and_complete_ones_kept(
        config, reference, tmp_path):
    """The issue's case: epoch_3.pth cut short as a kill during a plain
    write leaves it, last_checkpoint naming it."""
    work_dir = str(tmp_path / 'run')
    os.makedirs(work_dir)
    for index, name in enumerate(('epoch_1.pth', 'epoch_2.pth')):
        shutil.copyfile(osp.join(reference, name), osp.join(work_dir, name))
        os.utime(osp.join(work_dir, name), (1e9 + index, 1e9 + index))
    with open(osp.join(reference, 'epoch_3.pth'), 'rb') as f:
        body = f.read()
    broken = osp.join(work_dir, 'epoch_3.pth')
    with open(broken, 'wb') as f:
        f.write(body[:len(body) // 2])
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(broken)
    complete = osp.join(work_dir, 'epoch_2.pth')
    with open(complete, 'rb') as f:
        complete_body = f.read()

    # an explicit broken checkpoint: refused, naming it, the reason and the
    # last complete checkpoint of its folder
    log = train(work_dir, config, '--resume', broken).finish(expected=1)
    assert re.search(
        f'Cannot resume from {re.escape(broken)}: .*central directory.* '
        f'The last complete checkpoint in {re.escape(work_dir)} is '
        f'{re.escape(complete)}', log), log[-3000:]

    # retraining epoch 2 from epoch_1.pth, killed half-way through writing
    # epoch_2.pth: the complete epoch_2.pth stays as it was
    run = train(work_dir, config, '--resume', osp.join(work_dir,
                                                       'epoch_1.pth'),
                *hang_on('epoch_2.pth'))
    run.wait_for(HANGING)
    run.killed()
    with open(complete, 'rb') as f:
        assert f.read() == complete_body
    assert last_checkpoint(work_dir) == broken
    assert len(staged_leftovers(work_dir)) == 1

    # auto resume skips the broken epoch_3.pth for the newest complete one
    log = train(work_dir, config, '--resume').finish()
    assert f'Not resuming from {broken}: it does not load' in log
    assert f'Auto resumed from the latest complete checkpoint {complete}' \
        in log
    assert staged_leftovers(work_dir) == []
    assert_same_training_state(broken, osp.join(reference, 'epoch_3.pth'))


class CountingDataset(Dataset):
    """0..n-1, counting the items loaded."""

    def __init__(self, n: int):
        self.n = n
        self.loaded = []

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> int:
        self.loaded.append(index)
        return index


def test_batches_after_skips_by_index_or_by_loading():
    dataset = CountingDataset(10)
    loader = DataLoader(dataset, batch_size=3)
    sampler = loader.batch_sampler.sampler
    with batches_after(loader, 2) as batches:
        assert [b.tolist() for b in batches] == [[6, 7, 8], [9]]
    assert dataset.loaded == [6, 7, 8, 9]  # skipped without loading
    assert loader.batch_sampler.sampler is sampler and len(loader) == 4

    # a batch sampler of its own: the same batches, the skipped ones loaded
    dataset = CountingDataset(10)
    loader = DataLoader(dataset, batch_sampler=[[9, 8], [1], [0, 2, 3], [4]])
    with batches_after(loader, 2) as batches:
        assert [b.tolist() for b in batches] == [[0, 2, 3], [4]]
    assert dataset.loaded == [9, 8, 1, 0, 2, 3, 4]


def test_a_failed_write_leaves_the_complete_file(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    path.write_bytes(b'complete')

    def write_half_then_fail(f):
        f.write(b'par')
        raise OSError('No space left on device')

    with pytest.raises(OSError, match='No space left'):
        write_atomically(path, write_half_then_fail)
    assert path.read_bytes() == b'complete'
    assert os.listdir(tmp_path) == ['epoch_1.pth']

    write_atomically(path, lambda f: f.write(b'new and complete'))
    assert path.read_bytes() == b'new and complete'
    assert os.listdir(tmp_path) == ['epoch_1.pth']
