"""``sample_kernels``: every method's per-sample kernel W_b is the kernel its
layer runs, conv(x_b, W_b) being sample b's output up to a bias per output
channel (each of its rows x giving W_b x for a linear layer).
vis_tsne.py and compare_methods.py read these kernels."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from test_kernelwarehouse import SHAPES, kw_layer
from test_layers import KR_DIMS, randomise
from test_methods import randomise_norms

from mmkr.models.layers import DCDConv2d, DynamicLinear, create_dynamic


def mixing_layer(method, groups=2):
    conv = nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=groups,
                     bias=False)
    options = {} if method == 'weightnet' else dict(kernel_num=4)
    return randomise(
        create_dynamic(conv, method=method, kr_dims=KR_DIMS,
                       **options).double())


LAYERS = {
    'odconv': lambda: mixing_layer('odconv'),
    'odconv 1x depthwise': lambda: randomise(
        create_dynamic(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                       kernel_num=1, kr_dims=KR_DIMS).double()),
    'dyconv': lambda: mixing_layer('dyconv'),
    'condconv': lambda: mixing_layer('condconv'),
    'weightnet': lambda: mixing_layer('weightnet', groups=1),
    'weightnet depthwise': lambda: randomise(
        create_dynamic(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False),
                       method='weightnet', kr_dims=KR_DIMS).double()),
    'dcd': lambda: randomise_norms(
        randomise(
            DCDConv2d(8, 12, 3, 2, 1, layout='resnet_basic',
                      kr_dims=KR_DIMS).double())),
    'kernelwarehouse': lambda: kw_layer(SHAPES['grouped'], ratio=(4, 1),
                                        kr_dims=KR_DIMS),
}


@pytest.mark.parametrize('name', list(LAYERS))
def test_sample_kernels_are_the_kernels_the_layer_runs(name):
    layer = LAYERS[name]().eval()
    recorded = []
    layer.generator.register_forward_hook(
        lambda module, args, logits: recorded.append(module.activate(logits)))
    torch.manual_seed(0)
    x = torch.randn(3, layer.in_channels, 9, 11, dtype=torch.float64)
    d = torch.randn(3, KR_DIMS, dtype=torch.float64)
    with torch.no_grad():
        out, _ = layer.forward_kr(x, d)
        kernels = layer.sample_kernels(recorded[0])
    assert kernels.shape == (3, layer.out_channels,
                             layer.in_channels // layer.groups,
                             *layer.kernel_size)
    # samples differ, so a kernel of another sample (or the batch mean)
    # would not reproduce sample b's output
    assert (kernels[0] - kernels[1]).abs().max() > 1e-3
    for b in range(3):
        conv = F.conv2d(x[b:b + 1], kernels[b], None, layer.stride,
                        layer.padding, layer.dilation, layer.groups)
        residual = out[b:b + 1] - conv
        bias = residual.mean(dim=(2, 3), keepdim=True)
        torch.testing.assert_close(residual, bias.expand_as(residual),
                                   rtol=0, atol=1e-10)
        if name != 'dcd':  # the others have no bias here
            torch.testing.assert_close(bias, torch.zeros_like(bias),
                                       rtol=0, atol=1e-10)


@pytest.mark.parametrize('kernel_num', [1, 4])
def test_sample_kernels_of_a_linear_layer(kernel_num):
    layer = randomise(
        DynamicLinear(10, 6, bias=False, kernel_num=kernel_num,
                      kr_dims=KR_DIMS).double()).eval()
    recorded = []
    layer.generator.register_forward_hook(
        lambda module, args, logits: recorded.append(module.activate(logits)))
    torch.manual_seed(0)
    tokens = torch.randn(2, 5, 10, dtype=torch.float64)
    d = torch.randn(2, KR_DIMS, dtype=torch.float64)
    with torch.no_grad():
        out, _ = layer.forward_kr(tokens, d)
        kernels = layer.sample_kernels(recorded[0])
    assert kernels.shape == (2, 6, 10)
    torch.testing.assert_close(out, tokens @ kernels.transpose(1, 2),
                               rtol=0, atol=1e-10)
