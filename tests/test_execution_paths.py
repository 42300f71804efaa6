"""Every execution path of the dynamic layers equals the slow per-sample
reference (float64, outputs and gradients), the chooser picks the intended
path for each case, layouts survive, and no path builds the K-fold kernel
tensor."""
import pytest
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

from mmkr.models.layers import (CONV_PATHS, DynamicConv2d, DynamicLinear,
                                select_conv_path)
from mmkr.testing.reference import (reference_dynamic_conv2d,
                                    reference_dynamic_linear)

KR_DIMS = 6


def randomise(layer: nn.Module) -> nn.Module:
    """Non-zero biases and a temperature other than 1, so that no term can
    hide behind a zero or a one."""
    torch.manual_seed(3)
    with torch.no_grad():
        for param in layer.parameters():
            param.normal_(0, 0.5)
        for module in layer.modules():
            if hasattr(module, 'temperature'):
                module.temperature.fill_(2.3)
    return layer.double()


def valid_paths(layer: DynamicConv2d):
    """The paths that can run ``layer`` exactly."""
    heads = layer.generator.head_sizes
    paths = ['grouped', 'unfold']
    if layer.kernel_num == 1 and not heads['spatial']:
        paths.append('static')
    if (layer.kernel_size == (1, 1) and layer.groups == 1
            and layer.padding == (0, 0)):
        paths.append('pointwise')
    if heads['kernel'] and not heads['spatial']:
        paths.append('mixed')
    return paths


def assert_matches_reference(layer, reference, x, d):
    out, d_next = layer.forward_kr(x, d)
    ref, ref_d_next = reference(layer, x, d)
    torch.testing.assert_close(out, ref, rtol=1e-7, atol=1e-9)
    outputs, cotangents = [out], [torch.randn_like(out)]
    if d is not None and layer.kr_generator is not None:
        torch.testing.assert_close(d_next, ref_d_next, rtol=1e-7, atol=1e-9)
        outputs.append(d_next)
        cotangents.append(torch.randn_like(d_next))
    inputs = [x] + ([d] if d is not None else []) + list(layer.parameters())
    got = torch.autograd.grad(outputs, inputs, cotangents, allow_unused=True)
    ref_outputs = [ref] + ([ref_d_next] if len(outputs) == 2 else [])
    want = torch.autograd.grad(ref_outputs, inputs, cotangents,
                               allow_unused=True)
    for g, w in zip(got, want):
        if w is None:
            assert g is None or not g.any()
        else:
            torch.testing.assert_close(g, w, rtol=1e-7, atol=1e-9)


# (in, out, kernel, stride, padding, dilation, groups, attention, K)
CONV_CASES = [
    (6, 10, 3, 1, 1, 1, 1, 'odconv', 4),
    (6, 10, 3, 2, 1, 1, 1, 'odconv', 1),
    (8, 8, 3, 1, 2, 2, 2, 'odconv', 4),
    (8, 8, 3, 2, 1, 1, 8, 'odconv', 4),
    (8, 8, 5, 1, 2, 1, 8, 'odconv', 1),
    (6, 12, 1, 2, 0, 1, 1, 'odconv', 4),
    (6, 12, 1, 1, 0, 1, 1, 'odconv', 1),
    (8, 12, 1, 1, 0, 1, 4, 'odconv', 4),
    (6, 10, 3, 2, 1, 1, 1, 'dyconv', 4),
    (8, 8, 3, 1, 1, 1, 8, 'condconv', 3),
]


@pytest.mark.parametrize('case', CONV_CASES, ids=str)
@pytest.mark.parametrize('kr', [False, True], ids=['kr_off', 'kr_on'])
def test_every_valid_conv_path_equals_reference(case, kr):
    c_in, c_out, k, stride, pad, dil, groups, attention, num = case
    layer = randomise(
        DynamicConv2d(c_in, c_out, k, stride, pad, dil, groups,
                      bias=kr, kernel_num=num, method=attention,
                      kr_dims=KR_DIMS if kr else 0, reduction=0.5))
    x = torch.randn(3, c_in, 7, 6, dtype=torch.float64, requires_grad=True)
    d = (torch.randn(3, KR_DIMS, dtype=torch.float64, requires_grad=True)
         if kr else None)
    paths = valid_paths(layer)
    assert layer.select_path(7, 6) in paths and layer.graph_path in paths
    for path in paths:
        layer.path = path
        assert_matches_reference(layer, reference_dynamic_conv2d, x, d)


@pytest.mark.parametrize('shape', [(3, 12), (3, 5, 12)], ids=str)
@pytest.mark.parametrize('kernel_num', [1, 4])
def test_dynamic_linear_equals_reference(shape, kernel_num):
    layer = randomise(
        DynamicLinear(12, 9, kernel_num=kernel_num, kr_dims=KR_DIMS,
                      reduction=0.5))
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    d = torch.randn(3, KR_DIMS, dtype=torch.float64, requires_grad=True)
    assert_matches_reference(layer, reference_dynamic_linear, x, d)


@pytest.mark.parametrize('args,eager,graph', [
    ((1, False, 1, 1, 0), 'static', 'static'),
    ((1, False, 3, 8, 1), 'static', 'static'),
    ((4, False, 1, 1, 0), 'pointwise', 'pointwise'),
    ((4, False, 1, 4, 0), 'grouped', 'mixed'),
    ((4, False, 3, 1, 1), 'grouped', 'mixed'),
    ((1, True, 3, 1, 1), 'grouped', 'unfold'),
    ((4, True, 3, 1, 1), 'grouped', 'unfold'),
    ((4, True, (3, 1), 16, (1, 0)), 'grouped', 'unfold'),
    # large maps: at least half as many output positions as output
    # channels per group
    ((4, True, 3, 1, 1, 64, 32), 'grouped', 'unfold'),
    ((4, True, 3, 64, 1, 64, 1), 'grouped', 'unfold'),
    # small maps: the unfolded input is less than half the kernel
    ((4, True, 3, 1, 1, 512, 49), 'unfold', 'unfold'),
    ((1, True, 3, 1, 1, 512, 49), 'unfold', 'unfold'),
    ((4, False, 3, 1, 1, 512, 49), 'unfold', 'mixed'),
    ((4, True, 3, 1, 1, 64, 31), 'unfold', 'unfold'),
    ((4, True, 3, 2, 1, 64, 15), 'unfold', 'unfold'),
    ((4, True, 3, 2, 1, 64, 16), 'grouped', 'unfold'),
    # the geometric paths do not depend on the map
    ((4, False, 1, 1, 0, 512, 49), 'pointwise', 'pointwise'),
    ((1, False, 3, 1, 1, 512, 49), 'static', 'static'),
])
def test_path_chooser(args, eager, graph):
    assert select_conv_path(*args) == eager
    assert select_conv_path(*args, batch_agnostic=True) == graph
    assert {eager, graph} <= set(CONV_PATHS)


def test_chooser_reads_the_layer_shape():
    """The layer passes the right facts: K, the spatial head (none for 1x1
    and for DyConv), kernel size, groups, padding and, per call, the number
    of output positions; a fixed :attr:`path` wins."""
    assert DynamicConv2d(8, 8, 1).select_path(5, 5) == 'static'
    assert DynamicConv2d(8, 8, 1, kernel_num=4).select_path(5, 5) == \
        'pointwise'
    assert DynamicConv2d(8, 8, 1, padding=1, kernel_num=4).select_path(
        5, 5) == 'grouped'
    odconv = DynamicConv2d(8, 16, 3, padding=1)
    assert (odconv.select_path(4, 4), odconv.graph_path) == ('grouped',
                                                             'unfold')
    assert odconv.select_path(2, 3) == 'unfold'  # 2 * 6 positions < 16
    assert odconv.select_path(3, 3) == 'grouped'  # 2 * 9 positions
    strided = DynamicConv2d(8, 16, 3, stride=2, padding=1)
    assert strided.select_path(6, 6) == 'grouped'  # 9 output positions
    assert strided.select_path(3, 4) == 'unfold'  # 2 x 2 positions
    strided.path = 'grouped'
    assert strided.select_path(3, 4) == 'grouped'
    dyconv = DynamicConv2d(8, 8, 3, padding=1, kernel_num=4,
                           method='dyconv')
    assert (dyconv.select_path(3, 3), dyconv.graph_path) == ('grouped',
                                                             'mixed')


@pytest.mark.parametrize('path', ['static', 'pointwise', 'grouped', 'mixed',
                                  'unfold'])
def test_channels_last_is_kept(path):
    kernel, attention = ((1, 'odconv') if path in ('static', 'pointwise')
                         else (3, 'dyconv' if path == 'mixed' else 'odconv'))
    layer = DynamicConv2d(8, 16, kernel, padding=kernel // 2,
                          kernel_num=1 if path == 'static' else 4,
                          method=attention)
    layer.path = path
    x = torch.randn(2, 8, 6, 6).to(memory_format=torch.channels_last)
    out = layer(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, layer(x.contiguous()))
    assert layer(x.contiguous()).is_contiguous()


class LargestTensor(TorchDispatchMode):
    """Records the largest tensor any aten op returns, backward included."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.numel = max(self.numel, t.numel())
        return out


@pytest.mark.parametrize('path', ['grouped', 'unfold'])
def test_no_k_fold_kernel_tensor(path):
    """ODConv's code sums a (B, K, C_out, C_in, k, k) tensor over K; every
    tensor of ours, in forward and backward, stays below that size."""
    b, k, c_out, c_in = 4, 4, 32, 32
    layer = DynamicConv2d(c_in, c_out, 3, padding=1, kernel_num=k,
                          kr_dims=KR_DIMS)
    layer.path = path
    x = torch.randn(b, c_in, 5, 5, requires_grad=True)
    d = torch.randn(b, KR_DIMS)
    with LargestTensor() as largest:
        out, d_next = layer.forward_kr(x, d)
        (out.square().sum() + d_next.sum()).backward()
    # The per-sample kernels (B, C_out, C_in, k, k) are seen, so the mode
    # does watch the kernel arithmetic.
    assert b * c_out * c_in * 9 <= largest.numel < b * k * c_out * c_in * 9

