"""KR models under mixed precision, channels_last, torch.compile with a
dynamic batch, and ONNX export with a dynamic batch axis."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import init_default_scope

import mmkr  # noqa: F401
from mmkr.models.layers import (DynamicConv2d, SpectralKREncoder,
                                low_frequency_spectrum)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Two stages of an 8-channel KR-ResNet-18 with the KR head: every kind of
# dynamic conv of the full model (3x3, strided, 1x1 downsample), small
# enough to compile and export in a test.
TINY_MODEL = dict(
    type='ImageClassifier',
    backbone=dict(
        type='KRBackbone',
        backbone=dict(type='ResNet', depth=18, num_stages=2,
                      strides=(1, 2), dilations=(1, 1), out_indices=(1, ),
                      stem_channels=8, base_channels=8),
        kernel_num=4,
        kr_dims=16,
        return_kr=True,
        probe_size=(32, 32)),
    head=dict(type='KRLinearClsHead', num_classes=5, in_channels=16,
              kr_dims=16))


def build(model_cfg: dict) -> torch.nn.Module:
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model


def digits(num: int):
    """scikit-learn's handwritten digits as 32x32 RGB tensors, normalised."""
    from sklearn.datasets import load_digits
    data = load_digits()
    images = torch.tensor(data.images[:num], dtype=torch.float32)
    images = F.interpolate(images[:, None], size=32, mode='nearest')
    images = (images - images.mean()) / images.std()
    return images.expand(-1, 3, -1, -1).contiguous(), torch.tensor(
        data.target[:num])


def test_bf16_autocast_trains_50_iterations_finite():
    """50 SGD steps of a KR-ResNet on real digits under CPU bf16 autocast,
    checked step by step: every loss, gradient and parameter stays finite,
    and it learns (tests/test_tools_e2e.py runs ``tools/train.py --amp``)."""
    model = build(TINY_MODEL).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    images, labels = digits(8 * 50)
    labels = labels % 5
    losses = []
    for step in range(50):
        batch = slice(8 * step, 8 * (step + 1))
        with torch.autocast('cpu', dtype=torch.bfloat16):
            logits = model(images[batch], mode='tensor')
        assert logits.dtype == torch.bfloat16
        loss = F.cross_entropy(logits.float(), labels[batch])
        loss.backward()
        for name, param in model.named_parameters():
            assert param.grad is None or torch.isfinite(param.grad).all(), \
                f'step {step}: non-finite gradient of {name}'
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert sum(losses[-10:]) < sum(losses[:10])


def test_cpu_amp_optim_wrapper_autocasts_bf16_only():
    """What ``tools/train.py --amp`` uses without CUDA: the forward pass of
    the optim context is under CPU bfloat16 autocast, and float16 (which
    would need a loss scaler) is refused with the reason."""
    from mmkr.engine import CPUAmpOptimWrapper
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    wrapper = CPUAmpOptimWrapper(optimizer=optimizer)
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        assert model(torch.randn(3, 4)).dtype == torch.bfloat16
    assert not torch.is_autocast_enabled('cpu')
    with pytest.raises(ValueError, match='float16 on CPU would need a loss'):
        CPUAmpOptimWrapper(optimizer=optimizer, dtype='float16')


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_attention_and_fft_stay_float32_under_autocast(dtype):
    layer = DynamicConv2d(8, 16, 3, padding=1, kernel_num=4, kr_dims=8)
    encoder = SpectralKREncoder(8, freq_size=4)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    with torch.autocast('cpu', dtype=dtype):
        spectrum = low_frequency_spectrum(torch.randn(2, 3, 16, 16), 4)
        d = encoder(torch.randn(2, 3, 16, 16))
        att, d_next = layer.attend(x.mean(dim=(2, 3)), d)
        out, _ = layer.forward_kr(x, d)
    assert {a.dtype for a in att if a is not None} == {torch.float32}
    assert spectrum.dtype == torch.float32
    assert out.dtype == dtype
    out.float().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_fp16_autocast_forward_backward_finite():
    model = build(TINY_MODEL).train()
    images, _ = digits(4)
    with torch.autocast('cpu', dtype=torch.float16):
        logits = model(images, mode='tensor')
    assert logits.dtype == torch.float16
    logits.float().sum().backward()
    assert torch.isfinite(logits).all()
    assert all(
        torch.isfinite(p.grad).all() for p in model.parameters()
        if p.grad is not None)


def test_channels_last_model_keeps_layout():
    """channels_last images stay channels_last through the whole KR
    backbone, static stem, norms and dynamic convs alike."""
    model = build(TINY_MODEL).eval()
    images, _ = digits(3)
    feats = model.extract_feat(images)
    feats_cl = model.extract_feat(
        images.to(memory_format=torch.channels_last))
    assert feats_cl[0].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(feats_cl[0], feats[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(feats_cl[1], feats[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('backend,batches', [('eager', (8, 3, 1)),
                                             ('inductor', (8, 3))])
def test_compile_dynamic_batch_no_recompile_per_batch_size(backend, batches):
    """One dynamic graph serves batches 8 and 3, equal to eager; batch 1
    adds at most the graph that PyTorch's size-0/1 specialisation always
    adds. Dynamo decides the graphs (the backend only compiles them), so
    inductor, the slow part, compiles the one graph of batches 8 and 3.
    (8 comes first: traced at batch 3, dynamo's duck sizing would share one
    symbol between the batch and the 3 image channels, and the backbone's
    channel check would then fix the batch size.)"""
    from torch._dynamo.utils import counters
    model = build(TINY_MODEL).eval()

    def logits(x):
        return model(x, mode='tensor')

    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(logits, dynamic=True, backend=backend)
    graphs = []
    with torch.no_grad():
        for batch in batches:
            images, _ = digits(batch)
            torch.testing.assert_close(
                compiled(images), logits(images), rtol=1e-4, atol=1e-4)
            graphs.append(counters['stats']['unique_graphs'])
    assert graphs[:2] == [1, 1], graphs
    assert graphs[-1] <= 2, graphs


def test_compiled_training_step_matches_eager_without_recompiles():
    """Forward and backward through AOTAutograd (the part of torch.compile
    that traces the backward, with the per-sample conv as an opaque
    operator and its own backward operator): gradients equal eager, and
    batches 8 and 3 share one graph."""
    from torch._dynamo.utils import counters
    model = build(TINY_MODEL).train()

    def loss_of(x, labels):
        return F.cross_entropy(model(x, mode='tensor'), labels)

    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(loss_of, dynamic=True, backend='aot_eager')
    params = [p for p in model.parameters() if p.requires_grad]
    for batch in (8, 3):
        images, labels = digits(batch)
        got = torch.autograd.grad(compiled(images, labels % 5), params)
        want = torch.autograd.grad(loss_of(images, labels % 5), params)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
    assert counters['stats']['unique_graphs'] == 1


def run_tool(*args, check=True):
    return subprocess.run(
        [sys.executable,
         osp.join(REPO, 'tools', 'deployment', 'pytorch2onnx.py'), *args],
        cwd=REPO, capture_output=True, text=True, check=check)


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / 'tiny_kr.py'
    runtime = osp.join(REPO, 'configs', '_base_', 'default_runtime.py')
    path.write_text(f'_base_ = [{runtime!r}]\nmodel = {TINY_MODEL!r}\n')
    return str(path)


def test_onnx_dynamic_batch_matches_pytorch(tiny_config, tmp_path):
    pytest.importorskip('onnxruntime', reason='onnxruntime not installed')
    onnx = pytest.importorskip('onnx')
    output = str(tmp_path / 'tiny.onnx')
    result = run_tool(tiny_config, '--output-file', output, '--shape', '32',
                      '32', '--dynamic-export', '--verify')
    assert 'batch 1: max |onnxruntime - PyTorch|' in result.stdout
    assert 'batch 3: max |onnxruntime - PyTorch|' in result.stdout
    graph = onnx.load(output).graph
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param
    groups = [
        attr.i for node in graph.node if node.op_type == 'Conv'
        for attr in node.attribute if attr.name == 'group'
    ]
    assert groups and set(groups) == {1}


def test_onnx_tool_refuses_to_overwrite(tiny_config, tmp_path):
    output = tmp_path / 'kept.onnx'
    output.write_bytes(b'user data')
    result = run_tool(tiny_config, '--output-file', str(output), check=False)
    assert result.returncode != 0
    assert 'exists; pass --overwrite' in result.stderr
    assert output.read_bytes() == b'user data'
