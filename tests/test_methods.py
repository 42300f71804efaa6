"""Every dynamic-conv method of the layer family against a slow reference
written from its paper's formulas (DCD, WeightNet), against timm's CondConv
(a well-kept implementation), and with the KR path riding on it."""
import pytest
import torch
import torch.nn as nn
from test_layers import KR_DIMS, assert_equal_to_reference, grads, randomise
from timm.layers import CondConv2d

from mmkr.models.backbones import KRBackbone
from mmkr.models.layers import (DCDConv2d, DynamicConv2d, WeightNetConv2d,
                                create_dynamic, dcd_sizes)
from mmkr.testing.reference import (reference_dcd_conv2d,
                                    reference_dynamic_conv2d,
                                    reference_weightnet_conv2d)


def randomise_norms(layer: nn.Module):
    """Eval mode with non-trivial running statistics, so that the per-sample
    references see the same affine norms."""
    torch.manual_seed(2)
    for module in layer.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.normal_(0, 0.3)
            module.running_var.uniform_(0.5, 2.)
    return layer.eval()


def inputs(cin, batch=3, kr_dims=KR_DIMS, channels_last=False):
    x = torch.randn(batch, cin, 9, 11, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    d = (torch.randn(batch, kr_dims, dtype=torch.float64, requires_grad=True)
         if kr_dims else None)
    return x.requires_grad_(), d


# (in, out, kernel, stride, padding, dilation, bias, layout)
DCD_SHAPES = [
    (8, 12, 3, 1, 1, 1, False, 'resnet_basic'),
    (8, 12, 3, 2, 1, 1, True, 'resnet_basic'),
    (32, 16, 3, 1, 2, 2, False, 'resnet_bottleneck'),
    (8, 24, 1, 1, 0, 1, False, 'mobilenetv2'),
    (24, 8, 1, 2, 0, 1, False, 'mobilenetv2'),
]


@pytest.mark.parametrize('shape', DCD_SHAPES, ids=str)
@pytest.mark.parametrize('kr_dims', [0, KR_DIMS])
@pytest.mark.parametrize('batch,channels_last', [(3, False), (1, False),
                                                 (2, True)])
def test_dcd_equals_reference(shape, kr_dims, batch, channels_last):
    cin, cout, k, stride, padding, dilation, bias, layout = shape
    layer = randomise_norms(randomise(
        DCDConv2d(cin, cout, k, stride, padding, dilation, bias=bias,
                  layout=layout, kr_dims=kr_dims).double()))
    x, d = inputs(cin, batch, kr_dims, channels_last)
    for path in ('latent', 'merged'):
        layer.path = path
        assert_equal_to_reference(layer, reference_dcd_conv2d, x, d)
        assert layer.forward_kr(x, d)[0].is_contiguous(
            memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize('shape', DCD_SHAPES, ids=str)
@pytest.mark.parametrize('kr_dims', [0, KR_DIMS])
def test_dcd_in_training_equals_reference_with_batch_statistics(
        shape, kr_dims):
    """Training mode: both norms use the batch's statistics, so every
    sample's output depends on the other samples (the running statistics,
    randomised, must not enter)."""
    cin, cout, k, stride, padding, dilation, bias, layout = shape
    layer = randomise_norms(randomise(
        DCDConv2d(cin, cout, k, stride, padding, dilation, bias=bias,
                  layout=layout, kr_dims=kr_dims).double())).train()
    x, d = inputs(cin, 3, kr_dims)
    assert_equal_to_reference(layer, reference_dcd_conv2d, x, d)


def test_dcd_trains_on_the_latent_path():
    layer = DCDConv2d(8, 12, 3, padding=1)
    assert layer.train().select_path(56, 56) == 'latent'
    assert layer.eval().select_path(56, 56) == 'merged'
    # on a 2x2 map the latent path costs less than forming the kernels
    assert layer.eval().select_path(2, 2) == 'latent'
    assert DCDConv2d(8, 12, 2, padding=1, dilation=2).eval().select_path(
        56, 56) == \
        'latent'


def test_dcd_sizes_are_the_authors():
    """The latent width L and squeeze A of DCD's own layers: ResNet-18's
    conv_basic_dy(64, 64) and (256, 512), ResNet-50's conv_dy(256, ...),
    MobileNetV2 0.5x's DYModule(16, 96) and (96, 16) at fc_squeeze 8."""
    assert dcd_sizes(64, 64, 'resnet_basic') == (2, 16, 16)
    assert dcd_sizes(256, 512, 'resnet_basic') == (2, 32, 64)
    assert dcd_sizes(256, 64, 'resnet_bottleneck') == (1, 16, 16)
    assert dcd_sizes(8, 48, 'mobilenetv2', 8) == (2, 4, 4)
    assert dcd_sizes(96, 16, 'mobilenetv2', 8) == (1, 8, 12)


def test_dcd_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match='no form for grouped convs'):
        DCDConv2d(8, 8, 3, padding=1, groups=8)
    with pytest.raises(ValueError, match='padding keeps the size'):
        DCDConv2d(8, 8, 3, padding=0)
    with pytest.raises(ValueError, match='layout must be one of'):
        DCDConv2d(8, 8, 3, padding=1, layout='vgg')


# (in, out, kernel, stride, padding, dilation, groups, bias)
WEIGHTNET_SHAPES = [
    (8, 12, 3, 1, 1, 1, 1, False),
    (8, 12, 3, 2, 1, 1, 1, True),
    (8, 16, 1, 1, 0, 1, 1, False),
    (8, 8, 3, 2, 1, 1, 8, False),
    (8, 8, 5, 1, 4, 2, 8, True),
]


@pytest.mark.parametrize('shape', WEIGHTNET_SHAPES, ids=str)
@pytest.mark.parametrize('kr_dims', [0, KR_DIMS])
@pytest.mark.parametrize('path', ['grouped', 'unfold'])
def test_weightnet_equals_reference(shape, kr_dims, path):
    cin, cout, k, stride, padding, dilation, groups, bias = shape
    layer = randomise(
        WeightNetConv2d(cin, cout, k, stride, padding, dilation, groups, bias,
                        kr_dims=kr_dims).double())
    layer.path = path
    x, d = inputs(cin, 3, kr_dims)
    assert_equal_to_reference(layer, reference_weightnet_conv2d, x, d)


@pytest.mark.parametrize('batch,channels_last', [(1, False), (2, True)])
def test_weightnet_batch_one_and_channels_last(batch, channels_last):
    layer = randomise(WeightNetConv2d(8, 12, 3, 2, 1, kr_dims=KR_DIMS)
                      ).double()
    x, d = inputs(8, batch, KR_DIMS, channels_last)
    assert_equal_to_reference(layer, reference_weightnet_conv2d, x, d)
    assert layer.forward_kr(x, d)[0].is_contiguous(
        memory_format=torch.channels_last) == channels_last


def test_weightnet_sizes_are_the_authors():
    """WeightNet(inp=64, oup=128, ksize=3): wn_fc1 16 -> 256 with bias,
    wn_fc2 256 -> 128*64*9 in 256 groups; WeightNet_DW(inp=32, ksize=3):
    16 -> 32, 32 -> 32*9 in 32 groups."""
    full = WeightNetConv2d(64, 128, 3, padding=1)
    assert full.fusion.fc.weight.shape == (16, 64)
    assert full.generator.fc1.weight.shape == (256, 16)
    assert full.generator.fc2.weight.shape == (128 * 64 * 9, 1)
    assert full.generator.fc2.groups == 256
    depthwise = WeightNetConv2d(32, 32, 3, padding=1, groups=32)
    assert depthwise.generator.fc1.weight.shape == (32, 16)
    assert depthwise.generator.fc2.weight.shape == (32 * 9, 1)
    with pytest.raises(ValueError, match='full and a depthwise form'):
        WeightNetConv2d(8, 8, 3, groups=2)


@pytest.mark.parametrize('kernel_size,stride,bias', [(3, 1, True),
                                                     (3, 2, False),
                                                     (1, 1, True)])
def test_condconv_equals_timm(kernel_size, stride, bias):
    """mmkr's CondConv equals timm's CondConv2d with the routing of timm's
    CondConv blocks, sigmoid(Linear(GAP(x))), weights copied, in float64."""
    torch.manual_seed(0)
    theirs = CondConv2d(8, 12, kernel_size, stride, kernel_size // 2,
                        bias=bias, num_experts=8).double()
    routing = nn.Linear(8, 8).double()
    ours = DynamicConv2d(8, 12, kernel_size, stride, kernel_size // 2,
                         bias=bias, kernel_num=8, method='condconv').double()
    assert not hasattr(ours.generator, 'temperature')
    with torch.no_grad():
        ours.weight.copy_(theirs.weight.view_as(ours.weight))
        if bias:
            ours.bias.copy_(theirs.bias)
        ours.generator.heads['kernel'].load_state_dict(routing.state_dict())
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for m in (theirs, routing) for p in m.parameters())
    x = torch.randn(3, 8, 9, 9, dtype=torch.float64, requires_grad=True)
    out = ours.forward_kr(x)[0]
    ref = theirs(x, torch.sigmoid(routing(x.mean(dim=(2, 3)))))
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for g, ref_g in zip(grads([out], [x]), grads([ref], [x])):
        torch.testing.assert_close(g, ref_g, rtol=1e-10, atol=1e-10)


def test_dyconv_trunk_is_the_papers():
    """DyConv: FC (squeeze ratio 4) + ReLU, no norm, then the softmax head;
    with KR the trunk reads cat[d, h]."""
    layer = DynamicConv2d(32, 16, 3, padding=1, kernel_num=4,
                          method='dyconv', kr_dims=KR_DIMS)
    assert layer.fusion.fc.weight.shape == (8, KR_DIMS + 32)
    assert isinstance(layer.fusion.norm, nn.Identity)
    layer = randomise(layer.double())
    x, d = inputs(32)
    assert_equal_to_reference(layer, reference_dynamic_conv2d, x, d)


def build_method(method, kr_dims, generate_kr=True):
    conv = nn.Conv2d(8, 12, 3, padding=1)
    options = dict(kr_dims=kr_dims, generate_kr=generate_kr)
    if method in ('odconv', 'dyconv', 'condconv'):
        options['kernel_num'] = 4
    return create_dynamic(conv, method, **options)


METHODS = ['odconv', 'dyconv', 'condconv', 'dcd', 'weightnet']


@pytest.mark.parametrize('method', METHODS)
def test_kr_rides_on_every_method(method):
    """d changes the output; with K every parameter gets a gradient; the
    last layer without K leaves none unused (what DDP needs)."""
    torch.manual_seed(0)
    layer = build_method(method, KR_DIMS)
    assert layer.method == method
    x = torch.randn(1, 8, 6, 6).expand(2, -1, -1, -1)
    out, d_next = layer.forward_kr(x, torch.randn(2, KR_DIMS))
    assert not torch.allclose(out[0], out[1], atol=1e-5)
    (out.square().mean() + d_next.square().mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in layer.parameters())
    last = build_method(method, KR_DIMS, generate_kr=False)
    out, d_next = last.forward_kr(x, torch.randn(2, KR_DIMS))
    assert d_next is None
    out.square().mean().backward()
    assert all(p.grad is not None for p in last.parameters())


@pytest.mark.parametrize('method', METHODS)
def test_backbone_without_kr_head_leaves_no_parameter_unused(method):
    """A detection-style KR backbone (no KR head) trains every parameter
    from the feature maps alone, so DDP needs no find_unused_parameters."""
    options = dict(kernel_num=2) if method in ('odconv', 'dyconv',
                                               'condconv') else {}
    backbone = KRBackbone(
        dict(type='ResNet', depth=18, base_channels=8, out_indices=(2, 3)),
        method=method, kr_dims=4, **options)
    backbone.train()
    outs = backbone(torch.randn(2, 3, 32, 32))
    sum(o.square().mean() for o in outs).backward()
    unused = [n for n, p in backbone.named_parameters() if p.grad is None]
    assert not unused


def test_checkpoint_of_another_method_is_refused():
    """Tensors of a DyConv and a CondConv layer can have the same shapes
    (no trunk vs a trunk the size of the input); the recorded method
    tells them apart, and the error names both."""
    dyconv = DynamicConv2d(8, 8, 3, padding=1, kernel_num=4, method='dyconv')
    condconv = DynamicConv2d(8, 8, 3, padding=1, kernel_num=4,
                             method='condconv')
    with pytest.raises(ValueError, match="'dyconv' layer there, this model "
                       "a 'condconv' one"):
        condconv.load_state_dict(dyconv.state_dict(), strict=False)
    backbones = [
        KRBackbone(dict(type='ResNet', depth=18, base_channels=8),
                   method=method, with_kr=False, **options)
        for method, options in (('dcd', {}), ('weightnet', {}))
    ]
    with pytest.raises(ValueError, match="'dcd' layer there, this model a "
                       "'weightnet' one"):
        backbones[1].load_state_dict(backbones[0].state_dict())


def test_unknown_method_and_options_are_named():
    with pytest.raises(ValueError, match="unknown dynamic-conv method 'dcn'.*"
                       "'odconv', 'dyconv', 'condconv', 'dcd', 'weightnet'"):
        KRBackbone(dict(type='ResNet', depth=18), method='dcn')
    with pytest.raises(ValueError, match="kernel_num=4: method 'dcd' has no option 'kernel_num'"):
        KRBackbone(dict(type='ResNet', depth=18, base_channels=8),
                   method='dcd', kernel_num=4)
    with pytest.raises(TypeError, match='dcd has no dynamic Linear'):
        create_dynamic(nn.Linear(4, 4), 'dcd')
