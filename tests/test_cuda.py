"""The dynamic layers on CUDA, selected by ``pytest -m cuda`` and skipped
where CUDA is absent (tools/analysis_tools/device_check.sh runs them on a
GPU): every execution path against the float64 CPU reference, mixed
precision against float32, channels_last, one compiled graph for every
batch size, and ``tools/dist_train.sh`` on NCCL.

float32 runs in full precision here (no TF32): TF32 keeps 10 mantissa
bits, a relative error of 2^-11 (about 5e-4) per operand, above the 1e-4
the float64 comparisons allow; cuDNN uses it for float32 convs by default
on Ampere and later GPUs."""
import copy
import os.path as osp
import subprocess

import pytest
import torch
import torch.nn.functional as F
from test_amp_compile_onnx import TINY_MODEL, build, digits
from test_layers import CONV_SHAPES, KR_DIMS, randomise

from mmkr.models.layers import DCDConv2d, DynamicConv2d, WeightNetConv2d
from mmkr.testing.reference import (reference_dcd_conv2d,
                                    reference_dynamic_conv2d,
                                    reference_weightnet_conv2d)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
]
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# unit roundoff 2^-(mantissa bits + 1) of the autocast dtypes
ROUNDOFF = {torch.float16: 2.**-11, torch.bfloat16: 2.**-8}


@pytest.fixture(autouse=True)
def full_precision_float32():
    """No TF32 in float32 matmuls and convs during the test."""
    saved = (torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    (torch.backends.cuda.matmul.allow_tf32,
     torch.backends.cudnn.allow_tf32) = saved


def assert_cuda_equals_cpu_reference(layer, reference, x, d, paths):
    """Each path on CUDA in float32 equals the float64 reference on the CPU,
    forward and input gradient."""
    ref_out, _ = reference(layer, x, d)
    ref_grad, = torch.autograd.grad(ref_out.sum(), x)
    cuda = copy.deepcopy(layer).float().cuda()
    for path in paths:
        cuda.path = path
        x_cuda = x.detach().float().cuda().requires_grad_()
        d_cuda = None if d is None else d.detach().float().cuda()
        out, _ = cuda.forward_kr(x_cuda, d_cuda)
        grad, = torch.autograd.grad(out.sum(), x_cuda)
        torch.testing.assert_close(out.double().cpu(), ref_out.detach(),
                                   rtol=1e-4, atol=1e-4, msg=path)
        torch.testing.assert_close(grad.double().cpu(), ref_grad,
                                   rtol=1e-4, atol=1e-4, msg=path)


@pytest.mark.parametrize('shape', CONV_SHAPES, ids=str)
@pytest.mark.parametrize('kernel_num', [1, 4])
def test_every_path_equals_reference_on_cuda(shape, kernel_num):
    cin, cout, k, stride, padding, dilation, groups = shape
    layer = randomise(
        DynamicConv2d(cin, cout, k, stride, padding, dilation, groups, True,
                      kernel_num=kernel_num, kr_dims=KR_DIMS,
                      reduction=0.5).double())
    x = torch.randn(3, cin, 9, 11, dtype=torch.float64, requires_grad=True)
    d = torch.randn(3, KR_DIMS, dtype=torch.float64)
    assert_cuda_equals_cpu_reference(layer, reference_dynamic_conv2d, x, d,
                                     layer.valid_paths() + ['autotune'])


def test_dcd_and_weightnet_paths_on_cuda():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 9, 11, dtype=torch.float64, requires_grad=True)
    d = torch.randn(3, KR_DIMS, dtype=torch.float64)
    dcd = randomise(DCDConv2d(8, 12, 3, 2, 1, kr_dims=KR_DIMS).double())
    for module in dcd.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_var.uniform_(0.5, 2.)
    assert_cuda_equals_cpu_reference(dcd.eval(), reference_dcd_conv2d, x, d,
                                     ['latent', 'merged'])
    weightnet = randomise(
        WeightNetConv2d(8, 12, 3, 2, 1, kr_dims=KR_DIMS).double())
    assert_cuda_equals_cpu_reference(weightnet, reference_weightnet_conv2d,
                                     x, d, ['grouped', 'unfold'])


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('conv_path', [None, 'autotune'])
def test_mixed_precision_trains_20_steps(dtype, conv_path):
    """fp16 with GradScaler, bf16 without. The first batch's logits and
    loss under autocast equal float32's within 32 units of the dtype's
    roundoff (relative to the largest float32 logit, and to the loss):
    every layer rounds its inputs and weights once, and the tiny model has
    about ten of them. Then 20 SGD steps on real digits, every loss
    finite."""
    cfg = copy.deepcopy(TINY_MODEL)
    cfg['backbone']['conv_path'] = conv_path
    model = build(cfg).cuda().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scaler = torch.amp.GradScaler('cuda', enabled=dtype == torch.float16)
    images, labels = digits(64)
    images, labels = images.cuda(), (labels % 5).cuda()

    tolerance = 32 * ROUNDOFF[dtype]
    with torch.no_grad():
        logits = model(images[:16], mode='tensor')
        with torch.autocast('cuda', dtype=dtype):
            amp_logits = model(images[:16], mode='tensor').float()
    error = (amp_logits - logits).abs().max().item()
    scale = logits.abs().max().item()
    assert error <= tolerance * scale, (
        f'{dtype} logits differ from float32 by {error}, more than '
        f'{tolerance} of the largest logit {scale}')
    loss = F.cross_entropy(logits, labels[:16]).item()
    amp_loss = F.cross_entropy(amp_logits, labels[:16]).item()
    assert abs(amp_loss - loss) <= tolerance * loss, (
        f'{dtype} loss {amp_loss}, float32 loss {loss}: more than '
        f'{tolerance} apart relatively')

    for step in range(20):
        batch = slice(step % 4 * 16, step % 4 * 16 + 16)
        with torch.autocast('cuda', dtype=dtype):
            loss = F.cross_entropy(
                model(images[batch], mode='tensor').float(), labels[batch])
        assert torch.isfinite(loss), step
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)


def test_channels_last_is_kept_on_cuda():
    layer = DynamicConv2d(16, 32, 3, padding=1, kernel_num=4,
                          kr_dims=KR_DIMS).cuda()
    x = torch.randn(4, 16, 14, 14, device='cuda').to(
        memory_format=torch.channels_last)
    for path in layer.valid_paths():
        layer.path = path
        out, _ = layer.forward_kr(x, torch.randn(4, KR_DIMS, device='cuda'))
        assert out.is_contiguous(memory_format=torch.channels_last), path


def test_compiled_per_sample_conv_keeps_one_graph_on_cuda():
    """torch.compile(dynamic=True) with inductor: batches 8 and 3 share one
    graph and equal eager."""
    from torch._dynamo.utils import counters
    model = build(TINY_MODEL).cuda().eval()

    def logits(x):
        return model(x, mode='tensor')

    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(logits, dynamic=True)
    with torch.no_grad():
        for batch in (8, 3):
            images = digits(batch)[0].cuda()
            torch.testing.assert_close(compiled(images), logits(images),
                                       rtol=1e-3, atol=1e-3)
    assert counters['stats']['unique_graphs'] == 1


def test_dist_train_one_gpu_nccl(tmp_path):
    """tools/dist_train.sh CONFIG 1 runs a few iterations with NCCL."""
    from test_tools_e2e import CONVERTER, data_options
    data = str(tmp_path / 'digits')
    subprocess.run(['python', CONVERTER, '--out-dir', data, '--per-class',
                    '4'], check=True, cwd=REPO, timeout=300)
    work_dir = str(tmp_path / 'work')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', 'configs/demo/resnet18_kr4_digits.py',
         '1', '--work-dir', work_dir, '--cfg-options',
         *data_options(data), 'train_cfg.max_epochs=1',
         'env_cfg.dist_cfg.backend=nccl'],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'nccl' in (result.stdout + result.stderr).lower()
    assert osp.isfile(osp.join(work_dir, 'epoch_1.pth'))
