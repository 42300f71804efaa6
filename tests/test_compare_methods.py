"""tools/analysis_tools/compare_methods.py: a tiny real comparison (two
methods, two seeds, 20 digits, 8 short epochs: enough for the static model
to learn above chance) writes its table, CSV and plot with the numbers of
the runs' own logs, each seed trains a run of its own, and a second call
trains nothing."""
import csv
import glob
import importlib.util
import os.path as osp
import re
import statistics
import subprocess
import sys

import pytest
import torch
import yaml
from mmengine.config import Config
from PIL import Image

from mmkr.utils import load_from_local

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'compare_methods.py')
CONFIGS = [
    'configs/demo/resnet18_static_digits.py',
    'configs/demo/resnet18_kr1_digits.py'
]
SEEDS = ['0', '1']


# top-1 (%) of guessing one of the 10 digits
CHANCE = 10.


def options(data: str) -> list:
    """8 epochs of 3 iterations on the tiny digits, validated and saved
    after the last."""
    return [
        'train_cfg.max_epochs=8', 'train_cfg.val_interval=8',
        'default_hooks.checkpoint.interval=8',
        'train_dataloader.batch_size=8',
        f'train_dataloader.dataset.data_root={data}',
        f'val_dataloader.dataset.data_root={data}'
    ]


def compare(out_dir, data: str) -> subprocess.CompletedProcess:
    result = subprocess.run([
        sys.executable, TOOL, *CONFIGS, '--seeds', *SEEDS, '--work-dir',
        str(out_dir), '--per-class', '2', '--timing-repeat', '1',
        '--cfg-options', *options(data)
    ], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
    """The digits (2 train and 2 val images per class) and the work dir of
    one comparison on them, with the tool's stdout."""
    root = tmp_path_factory.mktemp('compare')
    data = str(root / 'digits')
    subprocess.run([
        sys.executable, 'tools/dataset_converters/prepare_digits_demo.py',
        '--out-dir', data, '--per-class', '4', '--val-ratio', '0.5'
    ], cwd=REPO, check=True, capture_output=True)
    out_dir = root / 'out'
    return data, out_dir, compare(out_dir, data).stdout


def logged_accuracy(run_dir) -> float:
    """Top-1 of the run's last validation, as its text log prints it."""
    (log, ) = glob.glob(osp.join(run_dir, '*', '*.log'))
    with open(log) as f:
        return float(re.findall(r'accuracy/top1: ([\d.]+)', f.read())[-1])


def read_csv(out_dir) -> dict:
    with open(out_dir / 'results.csv') as f:
        return {row['config']: row for row in csv.DictReader(f)}


def metafile_params() -> dict:
    with open(osp.join(REPO, 'configs', 'demo', 'metafile.yml')) as f:
        return {
            m['Name']: m['Metadata']['Parameters']
            for m in yaml.safe_load(f)['Models']
        }


def test_table_csv_and_plot_hold_the_runs_numbers(compared):
    _, out_dir, stdout = compared
    assert '4 of 4 runs to train' in stdout
    rows = read_csv(out_dir)
    table = (out_dir / 'results.md').read_text()
    params = metafile_params()
    for config in CONFIGS:
        name = osp.splitext(osp.basename(config))[0]
        row = rows[name]
        accuracies = [
            logged_accuracy(out_dir / name / f'seed{seed}') for seed in SEEDS
        ]
        # the text log prints 4 decimals
        assert [float(a) for a in row['top1'].split()] == pytest.approx(
            accuracies, abs=1e-4)
        mean, std = statistics.mean(accuracies), statistics.stdev(accuracies)
        assert float(row['top1_mean']) == pytest.approx(mean, abs=1e-4)
        assert float(row['top1_std']) == pytest.approx(std, abs=1e-4)
        assert f'| {name} | {mean:.2f} ± {std:.2f} |' in table
        assert int(row['params']) == params[name]
        assert float(row['flops']) > 0 and float(row['step_ms']) > 0
        assert -1 <= float(row['features_mean']) <= 1
    # a static model has no kernels; KR's last conv has
    assert rows['resnet18_static_digits']['kernels_mean'] == 'nan'
    assert '| static | resnet18_static_digits |' in table
    assert -1 <= float(rows['resnet18_kr1_digits']['kernels_mean']) <= 1
    with Image.open(out_dir / 'accuracy_vs_flops.png') as image:
        assert image.format == 'PNG' and min(image.size) > 100


def test_every_seed_trains_its_own_run(compared):
    """The runs of one config with different seeds end with other weights;
    the static model's learn above chance in these 24 iterations."""
    _, out_dir, _ = compared
    for config in CONFIGS:
        name = osp.splitext(osp.basename(config))[0]
        weights = []
        for seed in SEEDS:
            run_dir = out_dir / name / f'seed{seed}'
            written = Config.fromfile(f'{run_dir}.py').randomness.seed
            assert written == int(seed), (
                f'{run_dir}.py trains with seed {written}, not {seed}')
            accuracy = logged_accuracy(run_dir)
            assert name != 'resnet18_static_digits' or accuracy > CHANCE, (
                f'{name} seed {seed} ends at top-1 {accuracy} %, not above '
                f'chance ({CHANCE} %)')
            weights.append(
                load_from_local(str(run_dir / 'epoch_8.pth'))['state_dict'])
        assert any(not torch.equal(value, weights[1][key])
                   for key, value in weights[0].items()), (
                       f'{name}: seeds {SEEDS} trained bit-identical '
                       'weights; the seed must change the run')


def test_second_call_trains_nothing(compared):
    data, out_dir, _ = compared
    checkpoints = sorted(glob.glob(str(out_dir / '*' / '*' / '*.pth')))
    stamps = {path: osp.getmtime(path) for path in checkpoints}
    logs = sorted(glob.glob(str(out_dir / '*' / '*' / '*' / '*.log')))
    before = read_csv(out_dir)

    stdout = compare(out_dir, data).stdout
    assert '0 of 4 runs to train' in stdout
    assert {p: osp.getmtime(p) for p in checkpoints} == stamps
    assert sorted(glob.glob(str(out_dir / '*' / '*' / '*' / '*.log'))) == \
        logs
    after = read_csv(out_dir)
    for name, row in before.items():
        for key in ('top1', 'params', 'flops', 'kernels_mean',
                    'features_mean'):
            assert after[name][key] == row[key], (name, key)


def test_run_dir_of_another_config_is_refused(compared):
    """Results of another config must not enter the table."""
    _, out_dir, _ = compared
    spec = importlib.util.spec_from_file_location('compare_methods', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    run_dir = out_dir / 'resnet18_static_digits'
    other = tool.Run('resnet18_static_digits', 0,
                     Config(dict(train_cfg=dict(max_epochs=2))),
                     str(run_dir / 'seed0.py'), str(run_dir / 'seed0'))
    with pytest.raises(ValueError, match='trained from another config'):
        tool.write_config(other)
