"""The KR layers against the slow references of mmkr.testing.reference."""
import pytest
import torch
import torch.nn as nn

from mmkr.models.layers import (DynamicConv2d, DynamicLinear,
                                SpectralKREncoder, create_dynamic,
                                low_frequency_spectrum, select_conv_path)
from mmkr.testing.reference import (reference_dynamic_conv2d,
                                    reference_dynamic_linear,
                                    reference_odconv2d)

KR_DIMS = 8

# (in, out, kernel, stride, padding, dilation, groups)
CONV_SHAPES = [
    (8, 16, 1, 1, 0, 1, 1),
    (8, 16, 1, 2, 0, 1, 1),
    (8, 8, 3, 1, 1, 1, 1),
    (8, 12, 3, 2, 1, 1, 1),
    (8, 8, 3, 1, 2, 2, 1),
    (8, 12, 3, 1, 1, 1, 4),
    (8, 8, 3, 1, 1, 1, 8),
    (8, 8, 5, 2, 2, 1, 8),
    (6, 10, 5, 1, 2, 1, 1),
    (8, 8, 1, 1, 0, 1, 2),
]


def randomise(layer: nn.Module, temperature: float = 1.7):
    """Non-trivial values everywhere (zero biases would hide bugs)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for param in layer.parameters():
            param.normal_(0, 0.5)
        for module in layer.modules():
            if hasattr(module, 'temperature'):
                module.temperature.fill_(temperature)
    return layer


def grads(outputs, inputs):
    loss = sum((o * torch.linspace(-1, 1, o.numel(), dtype=o.dtype).view_as(o)
                ).sum() for o in outputs if o is not None)
    return torch.autograd.grad(loss, inputs)


def differs(what: str):
    """assert_close's message, saying ``what`` differs."""
    return lambda detail: f'{what} differs from the reference: {detail}'


def assert_equal_to_reference(layer, reference, x, d):
    names = ['x'] + (['d'] if d is not None else []) + [
        name for name, _ in layer.named_parameters()
    ]
    inputs = [x] + ([d] if d is not None else []) + list(layer.parameters())
    out, d_next = layer.forward_kr(x, d)
    ref_out, ref_d_next = reference(layer, x, d)
    torch.testing.assert_close(out, ref_out, rtol=1e-6, atol=1e-6,
                               msg=differs('the output'))
    if ref_d_next is None:
        assert d_next is None
    else:
        torch.testing.assert_close(d_next, ref_d_next, rtol=1e-6, atol=1e-6,
                                   msg=differs('d_next'))
    for name, g, ref_g in zip(names, grads((out, d_next), inputs),
                              grads((ref_out, ref_d_next), inputs)):
        torch.testing.assert_close(g, ref_g, rtol=1e-6, atol=1e-6,
                                   msg=differs(f'the gradient of {name}'))


@pytest.mark.parametrize('shape', CONV_SHAPES, ids=str)
@pytest.mark.parametrize('kernel_num', [1, 4])
@pytest.mark.parametrize('kr_dims', [0, KR_DIMS])
@pytest.mark.parametrize('bias', [False, True])
def test_dynamic_conv_equals_reference(shape, kernel_num, kr_dims, bias):
    cin, cout, k, stride, padding, dilation, groups = shape
    layer = randomise(
        DynamicConv2d(cin, cout, k, stride, padding, dilation, groups, bias,
                      kernel_num=kernel_num, kr_dims=kr_dims,
                      reduction=0.5).double())
    x = torch.randn(3, cin, 9, 11, dtype=torch.float64, requires_grad=True)
    d = (torch.randn(3, kr_dims, dtype=torch.float64, requires_grad=True)
         if kr_dims else None)
    assert_equal_to_reference(layer, reference_dynamic_conv2d, x, d)


@pytest.mark.parametrize('attention', ['dyconv', 'condconv'])
def test_dyconv_and_condconv_equal_reference(attention):
    layer = randomise(
        DynamicConv2d(8, 8, 3, padding=1, kernel_num=4, method=attention,
                      kr_dims=KR_DIMS).double())
    assert set(layer.generator.heads) == {'kernel'}
    x = torch.randn(2, 8, 7, 7, dtype=torch.float64, requires_grad=True)
    d = torch.randn(2, KR_DIMS, dtype=torch.float64, requires_grad=True)
    assert_equal_to_reference(layer, reference_dynamic_conv2d, x, d)


def test_every_conv_path_equals_reference():
    """Force each path the chooser may pick wherever it is valid."""
    layer = randomise(
        DynamicConv2d(8, 12, 1, kernel_num=4, kr_dims=KR_DIMS).double())
    x = torch.randn(2, 8, 5, 5, dtype=torch.float64, requires_grad=True)
    d = torch.randn(2, KR_DIMS, dtype=torch.float64, requires_grad=True)
    for path in ('pointwise', 'grouped'):
        layer.path = path
        assert_equal_to_reference(layer, reference_dynamic_conv2d, x, d)


@pytest.mark.parametrize('shape', [(3, 12), (3, 5, 12), (3, 4, 5, 12)],
                         ids=['vector', 'tokens', 'channels-last map'])
@pytest.mark.parametrize('kernel_num', [1, 4])
@pytest.mark.parametrize('kr_dims', [0, KR_DIMS])
@pytest.mark.parametrize('bias', [False, True])
def test_dynamic_linear_equals_reference(shape, kernel_num, kr_dims, bias):
    """(B, C), ViT tokens (B, N, C) and ConvNeXt's (B, H, W, C): h the mean
    over every position of a sample."""
    layer = randomise(
        DynamicLinear(12, 20, bias, kernel_num=kernel_num, kr_dims=kr_dims,
                      reduction=0.5).double())
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    d = (torch.randn(3, kr_dims, dtype=torch.float64, requires_grad=True)
         if kr_dims else None)
    assert_equal_to_reference(layer, reference_dynamic_linear, x, d)


@pytest.mark.parametrize('kernel_size,kernel_num', [(3, 4), (3, 1), (1, 4),
                                                    (1, 1)])
def test_kr_off_is_odconv(kernel_size, kernel_num):
    """KR off with ODConv's BatchNorm equals ODConv's own computation, in
    training mode (batch statistics) as well."""
    layer = randomise(
        DynamicConv2d(16, 32, kernel_size, stride=2, padding=kernel_size // 2,
                      kernel_num=kernel_num, norm='bn').double())
    layer.train()
    x = torch.randn(4, 16, 8, 8, dtype=torch.float64, requires_grad=True)
    out, d_next = layer.forward_kr(x)
    ref = reference_odconv2d(layer, x)
    assert d_next is None
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    assert layer.fusion.fc.bias is None  # ODConv's squeeze conv has none
    params = [x] + list(layer.parameters())
    for g, ref_g in zip(grads([out], params), grads([ref], params)):
        torch.testing.assert_close(g, ref_g, rtol=1e-6, atol=1e-6)


def test_depthwise_and_pointwise_heads():
    depthwise = DynamicConv2d(8, 8, 3, groups=8, kernel_num=4)
    assert set(depthwise.generator.heads) == {'channel', 'spatial', 'kernel'}
    pointwise = DynamicConv2d(8, 16, 1, kernel_num=1)
    assert set(pointwise.generator.heads) == {'channel', 'filter'}
    assert pointwise.select_path(5, 5) == 'static'


@pytest.mark.parametrize('args,path', [
    ((1, False, 1, 1, 0), 'static'),
    ((4, False, 1, 1, 0), 'pointwise'),
    ((4, False, 1, 2, 0), 'grouped'),
    ((1, True, 3, 1, 1), 'grouped'),
    ((4, True, 3, 1, 1), 'grouped'),
    ((1, False, 3, 1, 1), 'static'),
])
def test_path_chooser(args, path):
    assert select_conv_path(*args) == path


def test_batch_size_one_trains():
    layer = DynamicConv2d(8, 8, 3, padding=1, kernel_num=4, kr_dims=KR_DIMS)
    layer.train()
    out, d_next = layer.forward_kr(torch.randn(1, 8, 6, 6),
                                   torch.randn(1, KR_DIMS))
    (out.sum() + d_next.sum()).backward()
    assert all(p.grad is not None for p in layer.parameters())


def test_kr_input_required():
    layer = DynamicConv2d(8, 8, 3, padding=1, kr_dims=KR_DIMS)
    with pytest.raises(ValueError, match='received no kernel representation'):
        layer.forward_kr(torch.randn(2, 8, 6, 6))


def test_d_changes_kernels():
    """With KR on, another d gives other attentions, so other kernels."""
    layer = randomise(DynamicConv2d(8, 8, 3, padding=1, kernel_num=4,
                                    kr_dims=KR_DIMS))
    x = torch.randn(1, 8, 6, 6).expand(2, -1, -1, -1)
    out, _ = layer.forward_kr(x, torch.randn(2, KR_DIMS))
    assert not torch.allclose(out[0], out[1], atol=1e-4)


def test_invalid_arguments():
    with pytest.raises(ValueError, match='divisible by groups'):
        DynamicConv2d(6, 8, 3, groups=4)
    with pytest.raises(ValueError, match="unknown dynamic-conv method 'cbam'"
                       ".*'odconv', 'dyconv', 'condconv', 'dcd', 'weightnet'"):
        DynamicConv2d(8, 8, 3, method='cbam')
    with pytest.raises(ValueError, match='needs kernel_num >= 2'):
        DynamicConv2d(8, 8, 3, method='dyconv', kernel_num=1)
    with pytest.raises(ValueError, match="padding must be a number, a pair, "
                       "'same' or 'valid', got 'full'"):
        DynamicConv2d(4, 4, 3, padding='full')
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        DynamicConv2d(4, 4, 3, stride=2, padding='same')
    with pytest.raises(TypeError, match='no dynamic counterpart'):
        create_dynamic(nn.Conv1d(4, 4, 3))
    with pytest.raises(ValueError, match=r'\(B, \*, 4\), got \(2, 3\)'):
        DynamicLinear(4, 4).forward_kr(torch.randn(2, 3))


@pytest.mark.parametrize('kernel_size, dilation, padding, padding_mode', [
    (3, 1, 'same', 'zeros'),
    (4, 1, 'same', 'zeros'),  # even extent: one more on the right, bottom
    (3, 2, 'same', 'reflect'),
    (3, 1, 'valid', 'zeros'),
    (3, 1, 1, 'circular'),
    (5, 1, (2, 1), 'replicate'),
])
def test_padding_as_the_static_conv(kernel_size, dilation, padding,
                                    padding_mode):
    """Every padding and padding mode of nn.Conv2d, on every path: each
    sample's kernel applied by the static conv itself."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, kernel_size, dilation=dilation, padding=padding,
                     padding_mode=padding_mode).double()
    layer = create_dynamic(conv, kernel_num=2, kr_dims=KR_DIMS).double()
    x = torch.randn(3, 4, 9, 8, dtype=torch.float64)
    d = torch.randn(3, KR_DIMS, dtype=torch.float64)
    expected, _ = reference_dynamic_conv2d(layer, x, d, conv=conv)
    for path in layer.valid_paths():
        layer.path = path
        out, _ = layer.forward_kr(x, d)
        torch.testing.assert_close(out, expected, msg=f'path {path}')


def test_from_static_keeps_geometry():
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=2, dilation=2, groups=4,
                     bias=True)
    layer = create_dynamic(conv, kernel_num=4)
    assert isinstance(layer, DynamicConv2d)
    x = torch.randn(2, 8, 15, 15)
    assert layer(x).shape == conv(x).shape
    assert layer.weight.shape == (4, ) + conv.weight.shape
    linear = create_dynamic(nn.Linear(8, 3, bias=False), kernel_num=2)
    assert linear.bias is None and linear.weight.shape == (2, 3, 8)


def test_low_frequency_spectrum_formula():
    """The block equals the lowest frequencies of a direct DFT."""
    img = torch.randn(2, 3, 12, 10, dtype=torch.float64)
    n = 4
    spec = low_frequency_spectrum(img, n)
    assert spec.shape == (2, 3, n, n // 2 + 1)
    ys = torch.arange(12, dtype=torch.float64)
    xs = torch.arange(10, dtype=torch.float64)
    for row, ky in enumerate([0, 1, -2, -1]):
        for col, kx in enumerate(range(n // 2 + 1)):
            phase = -2 * torch.pi * (ky * ys[:, None] / 12 + kx * xs / 10)
            basis = torch.polar(torch.ones_like(phase), phase)
            coef = (img.to(torch.complex128) * basis).sum(dim=(-2, -1))
            expected = torch.log1p(coef.abs() / (12 * 10)**0.5)
            torch.testing.assert_close(spec[:, :, row, col], expected)


def test_spectral_encoder_uses_low_frequencies_only():
    encoder = SpectralKREncoder(KR_DIMS, freq_size=4)
    img = torch.randn(1, 3, 32, 32)
    checker = 1 - 2 * ((torch.arange(32)[:, None] + torch.arange(32)) % 2)
    high = img + checker.float()  # the Nyquist frequency alone
    torch.testing.assert_close(encoder(img), encoder(high))
    low = img + torch.linspace(0, 1, 32)
    assert not torch.allclose(encoder(img), encoder(low))
    with pytest.raises(ValueError, match=r'shape \(B, 3, H, W\)'):
        encoder(torch.randn(1, 1, 32, 32))


def test_state_dict_shape_mismatch_names_layer():
    src = nn.Sequential(nn.Identity(), DynamicConv2d(8, 8, 3, kernel_num=4))
    dst = nn.Sequential(nn.Identity(), DynamicConv2d(8, 8, 3, kernel_num=1))
    with pytest.raises(ValueError) as err:
        dst.load_state_dict(src.state_dict(), strict=False)
    msg = str(err.value)
    assert "dynamic layer '1'" in msg and 'kernel_num=1' in msg
    assert '(4, 8, 8, 3, 3)' in msg and '(1, 8, 8, 3, 3)' in msg
