"""The measured path choice of DynamicConv2d and its K-fold path: exact
paths only, cached per signature, the rule while compiling or exporting,
one choice for all ranks."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from test_amp_compile_onnx import TINY_MODEL, run_tool
from test_layers import (CONV_SHAPES, KR_DIMS, assert_equal_to_reference,
                         randomise)

from mmkr.models.backbones import KRBackbone
from mmkr.models.layers import DynamicConv2d
from mmkr.models.layers.autotune import AUTOTUNER
from mmkr.testing.reference import reference_dynamic_conv2d

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture
def fresh_autotuner():
    """AUTOTUNER with an empty cache and count; restored afterwards."""
    saved = AUTOTUNER.timer, dict(AUTOTUNER.choices), AUTOTUNER.timed
    AUTOTUNER.clear()
    AUTOTUNER.timed = 0
    yield AUTOTUNER
    AUTOTUNER.timer, AUTOTUNER.choices, AUTOTUNER.timed = saved


@pytest.fixture
def counting_autotuner(fresh_autotuner):
    """A timer that records what it timed and prefers the paths in
    ``order``."""
    timed = []
    order = ['kfold', 'unfold', 'grouped', 'mixed', 'pointwise', 'static']

    def timer(path, run):
        run()
        timed.append(path)
        return order.index(path)

    fresh_autotuner.timer = timer
    return timed


@pytest.mark.parametrize('shape', CONV_SHAPES, ids=str)
@pytest.mark.parametrize('kernel_num', [1, 4])
def test_kfold_path_equals_reference(shape, kernel_num):
    cin, cout, k, stride, padding, dilation, groups = shape
    layer = randomise(
        DynamicConv2d(cin, cout, k, stride, padding, dilation, groups, True,
                      kernel_num=kernel_num, kr_dims=KR_DIMS,
                      reduction=0.5).double())
    layer.path = 'kfold'
    x = torch.randn(3, cin, 9, 11, dtype=torch.float64, requires_grad=True)
    d = torch.randn(3, KR_DIMS, dtype=torch.float64, requires_grad=True)
    assert_equal_to_reference(layer, reference_dynamic_conv2d, x, d)


@pytest.mark.parametrize('shape', CONV_SHAPES[:6], ids=str)
def test_autotuner_runs_an_exact_path(shape, fresh_autotuner):
    """Whatever the real timings, the chosen path computes the reference's
    function, forward and backward."""
    cin, cout, k, stride, padding, dilation, groups = shape
    layer = randomise(
        DynamicConv2d(cin, cout, k, stride, padding, dilation, groups,
                      kernel_num=4, kr_dims=KR_DIMS, reduction=0.5).double())
    layer.path = 'autotune'
    x = torch.randn(2, cin, 9, 11, dtype=torch.float64, requires_grad=True)
    d = torch.randn(2, KR_DIMS, dtype=torch.float64, requires_grad=True)
    assert_equal_to_reference(layer, reference_dynamic_conv2d, x, d)
    assert set(AUTOTUNER.choices.values()) <= set(layer.valid_paths())


def test_autotuner_times_once_per_signature(counting_autotuner):
    layer = DynamicConv2d(8, 12, 3, padding=1, kernel_num=4)
    layer.path = 'autotune'
    x = torch.randn(2, 8, 9, 9)
    layer.forward_kr(x)
    assert sorted(counting_autotuner) == sorted(layer.valid_paths())
    assert AUTOTUNER.timed == 1
    layer.forward_kr(x)  # same signature: no timing
    DynamicConv2d(8, 12, 3, padding=1, kernel_num=4).forward_kr(x)
    assert AUTOTUNER.timed == 1
    layer.forward_kr(torch.randn(3, 8, 9, 9))  # another input shape
    with torch.no_grad():  # another grad mode
        layer.forward_kr(x)
    layer.forward_kr(x.contiguous(memory_format=torch.channels_last))
    assert AUTOTUNER.timed == 4
    assert set(AUTOTUNER.choices.values()) == {'kfold'}


def test_autotuning_leaves_no_gradient_behind(counting_autotuner):
    layer = DynamicConv2d(8, 12, 3, padding=1, kernel_num=4)
    layer.path = 'autotune'
    layer.forward_kr(torch.randn(2, 8, 9, 9))
    assert all(p.grad is None for p in layer.parameters())


def test_rule_decides_while_compiling_and_exporting(counting_autotuner):
    layer = DynamicConv2d(8, 12, 3, padding=1, kernel_num=4).eval()
    layer.path = 'autotune'
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        layer.path = None
        expected = layer.forward_kr(x)[0]
        layer.path = 'autotune'
        compiled = torch.compile(layer, backend='eager')
        torch.testing.assert_close(compiled(x), expected)
        # check_trace would rerun the module eagerly, outside the trace
        traced = torch.jit.trace(layer, x, check_trace=False)
        torch.testing.assert_close(traced(x), expected)
    assert AUTOTUNER.timed == 0 and not AUTOTUNER.choices


def test_ranks_agree_on_rank_zeros_choice(tmp_path):
    """Two gloo ranks whose timings disagree (rank 0 prefers 'unfold',
    rank 1 'kfold') both run and cache rank 0's choice."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={port}',
         osp.join(REPO, 'tests', 'autotune_ranks.py'), str(tmp_path)],
        cwd=REPO, timeout=300, capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):
        ran, cached = (tmp_path / f'rank{rank}.txt').read_text().split()
        assert (ran, cached) == ('unfold', 'unfold'), (
            f'rank {rank} ran {ran!r} and cached {cached!r}; every rank '
            "must run and cache rank 0's choice 'unfold'")


def test_backbone_sets_the_path_and_names_bad_ones():
    backbone = KRBackbone(dict(type='ResNet', depth=18, base_channels=8),
                          kernel_num=2, conv_path='autotune')
    assert {layer.path for layer in backbone.dynamic_layers.values()} == {
        'autotune'}
    with pytest.raises(ValueError, match="conv_path='fastest' is not an "
                       r"exact path of layer1\.0\.conv1 .*'kfold'"):
        KRBackbone(dict(type='ResNet', depth=18, base_channels=8),
                   conv_path='fastest')
    # exact for the 1x1 downsample convs of a 1x network only
    with pytest.raises(ValueError, match="conv_path='static' is not an "
                       r"exact path of layer1\.0\.conv1"):
        KRBackbone(dict(type='ResNet', depth=18, base_channels=8),
                   conv_path='static')


def test_onnx_export_runs_the_kfold_path(tmp_path):
    """With the K-fold path as the graph path, the exported graph applies
    the candidates as MatMuls (no batch-folded Conv) and matches PyTorch at
    batch sizes 1 and 3."""
    pytest.importorskip('onnxruntime', reason='onnxruntime not installed')
    onnx = pytest.importorskip('onnx')
    model = dict(TINY_MODEL)
    model['backbone'] = dict(model['backbone'], conv_path='kfold')
    config = tmp_path / 'tiny_kfold.py'
    runtime = osp.join(REPO, 'configs', '_base_', 'default_runtime.py')
    config.write_text(f'_base_ = [{runtime!r}]\nmodel = {model!r}\n')
    output = str(tmp_path / 'tiny.onnx')
    result = run_tool(str(config), '--output-file', output, '--shape', '32',
                      '32', '--dynamic-export', '--verify')
    assert 'batch 3: max |onnxruntime - PyTorch|' in result.stdout
    nodes = [node.op_type for node in onnx.load(output).graph.node]
    # the stem is the one static conv; every dynamic 3x3 conv is a MatMul
    assert nodes.count('Conv') == 1 and 'MatMul' in nodes
