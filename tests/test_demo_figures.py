"""The README's demo figures are what the demo gives: the demo job (seed 0,
as `bash tools/demo.sh` runs it, on the digits written into a temporary
folder) lands in the range over seeds the README's table states, for every
row of that table.

The training is the whole demo (6 epochs of 45 iterations), about a minute
on 2 idle cores."""
import glob
import json
import os.path as osp
import re
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = 'configs/demo/resnet18_kr4_digits.py'
TIMEOUT = 1200

# README row label -> how the figure is read from the run
ROWS = {
    'val top-1 (%), 360 digits': 'top1',
    'class spread at `layer4.1.conv2`': 'spread:layer4.1.conv2',
    'largest class spread in stage 1': 'spread:layer1',
    'kernel-attention entropy, stage 1': 'entropy:layer1',
    'kernel-attention entropy, stage 4': 'entropy:layer4',
}


def readme_figures() -> dict:
    """Row label -> (seed 0 figure, low, high, half a unit of the last
    digit written) from the README's table."""
    with open(osp.join(REPO, 'README.md')) as f:
        text = f.read()
    figures = {}
    for label in ROWS:
        number = r'([\d.]+)'
        row = (rf'^\| {re.escape(label)} \| {number} \| {number} – '
               rf'{number} \|$')
        found = re.search(row, text, re.MULTILINE)
        assert found, f'README.md has no row {label!r} with a range'
        seed0, low, high = found.groups()
        digits = len(seed0.partition('.')[2])
        figures[label] = (float(seed0), float(low), float(high),
                          0.5 * 10**-digits)
    return figures


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory) -> dict:
    """The demo's figures, measured: top-1, class spreads, entropies."""
    root = tmp_path_factory.mktemp('demo')
    data, work_dir = str(root / 'digits'), str(root / 'run')
    run = dict(cwd=REPO, check=True, capture_output=True, text=True,
               timeout=TIMEOUT)
    subprocess.run([
        sys.executable, 'tools/dataset_converters/prepare_digits_demo.py',
        '--out-dir', data
    ], **run)
    data_options = [
        f'{split}_dataloader.dataset.data_root={data}'
        for split in ('train', 'val', 'test')
    ]
    subprocess.run([
        sys.executable, 'tools/train.py', CONFIG, '--work-dir', work_dir,
        '--cfg-options', *data_options
    ], **run)
    [scalars] = glob.glob(osp.join(work_dir, '*', 'vis_data',
                                   'scalars.json'))
    figures = {}
    with open(scalars) as f:
        for record in map(json.loads, f):
            if 'accuracy/top1' in record and record['step'] == 6:
                figures['top1'] = record['accuracy/top1']
            for key, value in record.items():
                if key.startswith('attention/kernel_entropy/'):
                    figures['entropy:' + key.rsplit('/', 1)[1]] = value
    table = subprocess.run([
        sys.executable, 'tools/visualization/vis_attention.py', CONFIG,
        osp.join(work_dir, 'epoch_6.pth'), '--out',
        str(root / 'kernel_attention.png'), '--cfg-options',
        data_options[1]
    ], **run).stdout
    for name, spread in re.findall(
            r'^(layer\S+)\s+\d+\s+[\d.]+\s+([\d.]+)$', table, re.MULTILINE):
        figures['spread:' + name] = float(spread)
        stage = 'spread:' + name.split('.')[0]
        figures[stage] = max(figures.get(stage, 0.), float(spread))
    return figures


@pytest.mark.parametrize('label', list(ROWS))
def test_the_demo_lands_in_the_readme_range(label, demo_run):
    seed0, low, high, rounding = readme_figures()[label]
    assert low - rounding <= seed0 <= high + rounding, (
        f'README.md: seed 0 figure {seed0} of {label!r} is outside its own '
        f'range {low} – {high}')
    measured = demo_run[ROWS[label]]
    assert low - rounding <= measured <= high + rounding, (
        f'the demo gives {measured:.4f} for {label!r}; README.md says '
        f'{seed0} ({low} – {high} over seeds)')
