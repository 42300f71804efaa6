"""The benchmark's, the downstream step timer's and the FLOPs tool's command
lines run, print the rows they promise, and the benchmark's ODConv-style
execution computes ODConv."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmkr.models.layers import DynamicConv2d
from mmkr.testing.reference import reference_dynamic_conv2d

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(REPO, 'tools', 'analysis_tools')
DEMO = 'configs/demo/resnet18_kr4_digits.py'


def run_tool(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, osp.join(TOOLS, name), *args],
                          cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.parametrize('groups,kernel_num', [(1, 4), (8, 4), (1, 1)])
def test_benchmark_odconv_style_equals_reference(groups, kernel_num):
    """The baseline that ``benchmark.py --layers`` times mmkr against
    computes the same function as the per-sample reference."""
    sys.path.insert(0, TOOLS)
    try:
        from benchmark import odconv_style
    finally:
        sys.path.remove(TOOLS)
    torch.manual_seed(0)
    layer = DynamicConv2d(8, 8, 3, stride=2, padding=1, groups=groups,
                          kernel_num=kernel_num).double()
    x = torch.randn(3, 8, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(
        odconv_style(layer, x), reference_dynamic_conv2d(layer, x)[0])


def test_benchmark_layers_mode_prints_every_shape_and_path():
    out = run_tool('benchmark.py', '--layers', '--models', 'resnet18',
                   '--batch-size', '2', '--input-size', '32', '--repeat',
                   '1', '--warmup', '0', '--no-reference', '--paths')
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.strip().startswith('layer'))
    header = lines[start]
    for column in ('rule path', 'tuned path', 'static ms', 'odconv ms',
                   'kr-off ms', 'kr-on ms', 'tuned ms', 'grouped ms',
                   'unfold ms', 'kfold ms', 'off/odc t', 'off/odc m'):
        assert column in header
    # the ten distinct convs of ResNet-18 but the stem, after the rule line
    rows = [line.split() for line in lines[start + 2:start + 12]]
    assert all('->' in row[0] for row in rows), out
    paths = {'static', 'pointwise', 'grouped', 'mixed', 'unfold', 'kfold'}
    # 'C->C kxk sS @H', then the rule's and the autotuner's paths
    assert all({row[4], row[5]} <= paths for row in rows), out


def test_benchmark_model_mode_against_derived_baseline():
    out = run_tool('benchmark.py', DEMO, '--batch-size', '2',
                   '--input-size', '32', '--repeat', '1', '--warmup', '0',
                   '--conv-path', 'autotune')
    # every one of the demo's 19 dynamic convs ran a path it autotuned
    paths = next(line for line in out.splitlines()
                 if line.startswith('paths of the dynamic convs'))
    assert 'conv_path=autotune' in paths
    counts = [item.split() for item in paths.split(': ')[-1].split(', ')]
    assert sum(int(n) for _, n in counts) == 19, paths
    rows = {line.split()[0]: line.split() for line in out.splitlines()
            if line.split()[:2] in (['train', 'eager'], ['infer', 'eager'])}
    assert set(rows) == {'train', 'infer'}
    for row in rows.values():
        assert float(row[4]) > 0  # time KR/static
        assert float(row[7]) > 0  # memory KR/static


@pytest.mark.slow
def test_downstream_step_time_times_the_steps_after_warmup():
    pytest.importorskip('mmdet')
    config = 'configs/downstream/faster-rcnn_kr4-mobilenet-v2_fpn_1x_coco.py'
    out = run_tool('downstream_step_time.py', config, '--steps', '2',
                   '--warmup', '1')
    rows = [line.split(' | ') for line in out.splitlines()
            if line.startswith('| faster-rcnn')]
    assert len(rows) == 1, out
    _, steps, median, minimum = rows[0]
    assert int(steps) == 2
    assert float(median) >= float(minimum.rstrip(' |')) > 0


def test_downstream_step_time_refuses_no_steps():
    proc = subprocess.run(
        [sys.executable, osp.join(TOOLS, 'downstream_step_time.py'),
         '--steps', '0'], cwd=REPO, capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 2 and '--steps must be >= 1' in proc.stderr


def test_get_flops_prints_conventions_and_counts():
    out = run_tool('get_flops.py', DEMO, '--shape', '32', '32')
    assert 'FLOPs are multiply-adds' in out
    row = next(line for line in out.splitlines() if line.startswith(DEMO))
    flops = row.split()[1]
    assert flops.endswith('M') and float(flops[:-1]) > 0
