"""KRBackbone: which layers it swaps, how d flows, what it returns."""
import pytest
import torch
import torch.nn as nn
from mmengine.runner import load_checkpoint, save_checkpoint
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401
from mmkr.models.backbones import execution_order
from mmkr.models.layers import DynamicConv2d, DynamicLayer


def build(depth=18, **kwargs):
    cfg = dict(type='KRBackbone',
               backbone=dict(type='ResNet', depth=depth,
                             out_indices=kwargs.pop('out_indices', (3, ))),
               kr_dims=16, **kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('depth,convs', [(18, 20), (34, 36), (50, 53)])
def test_swaps_every_conv_but_the_stem(depth, convs):
    model = build(depth, kernel_num=4)
    static = [
        name for name, m in model.backbone.named_modules()
        if type(m) is nn.Conv2d
    ]
    dynamic = [
        name for name, m in model.backbone.named_modules()
        if isinstance(m, DynamicConv2d)
    ]
    assert static == ['conv1']
    assert len(dynamic) == convs - 1
    assert dynamic == sorted(model.dynamic_names, key=dynamic.index)
    assert all(model.backbone.get_submodule(n).kernel_num == 4
               for n in dynamic)


def test_static_layers_option():
    model = build(static_layers=['conv1', 'layer1'])
    assert not any(name.startswith('layer1') for name in model.dynamic_names)
    assert type(model.backbone.layer1[0].conv1) is nn.Conv2d
    with pytest.raises(ValueError, match='leaves no layer'):
        build(static_layers=['*'])


def test_chain_follows_execution_order():
    """A ResNet block's downsample runs after its second conv."""
    model = build(depth=18)
    names = model.dynamic_names
    assert names.index('layer2.0.downsample.0') == names.index(
        'layer2.0.conv2') + 1
    prefixed = ['backbone.' + name for name in names]
    ran = execution_order(model, prefixed[::-1], torch.zeros(1, 3, 32, 32))
    assert ran == prefixed
    # the last layer that runs hands d on to nobody
    layers = model.dynamic_layers
    assert layers[names[-1]].kr_generator is None
    assert all(layers[n].kr_generator is not None for n in names[:-1])


def last_layer_logits(model, img, d0_shift=0.):
    """Generator logits of the last dynamic layer, with d_0 shifted."""
    captured = {}
    last = model.dynamic_layers[model.dynamic_names[-1]]
    hooks = [
        last.generator.register_forward_hook(
            lambda m, args, out: captured.setdefault('logits', out)),
        model.encoder.register_forward_hook(
            lambda m, args, out: out + d0_shift),
    ]
    try:
        model(img)
    finally:
        for hook in hooks:
            hook.remove()
    return captured['logits']


def test_kernel_representation_reaches_the_last_layer():
    torch.manual_seed(0)
    model = build(kernel_num=4).eval()
    img = torch.randn(1, 3, 64, 64)
    base = last_layer_logits(model, img)
    assert not torch.allclose(base, last_layer_logits(model, img, 1.))
    # a change of the image's low frequencies alone changes them as well
    low = img + 0.5 * torch.linspace(-1, 1, 64)
    assert not torch.allclose(base, last_layer_logits(model, low))
    # the gradient of the last kernels reaches d_0
    d0 = {}
    model.encoder.register_forward_hook(
        lambda m, args, out: d0.setdefault('d', out.detach().requires_grad_()))
    logits = last_layer_logits(model, img)
    (grad, ) = torch.autograd.grad(logits.sum(), d0['d'])
    assert grad.abs().sum() > 0


def test_kr_off_has_no_representation():
    model = build(with_kr=False, kernel_num=4)
    assert model.encoder is None
    for layer in model.dynamic_layers.values():
        assert layer.kr_dims == 0 and layer.kr_generator is None
    with pytest.raises(ValueError, match='return_kr=True needs with_kr'):
        build(with_kr=False, return_kr=True)


def test_outputs_and_return_kr():
    model = build(out_indices=(0, 1, 2, 3)).eval()
    img = torch.randn(2, 3, 64, 64)
    outs = model(img)
    assert [o.shape[1] for o in outs] == [64, 128, 256, 512]
    with_kr = build(out_indices=(0, 1, 2, 3), return_kr=True).eval()
    outs = with_kr(img)
    assert len(outs) == 5 and outs[-1].shape == (2, 16)
    assert model.chain.d is None, 'd must not outlive the forward pass'
    with pytest.raises(ValueError, match=r'shape \(B, 3, H, W\)'):
        model(torch.randn(2, 1, 64, 64))


def test_every_parameter_gets_a_gradient():
    """What DDP requires, with and without a KR head."""
    for return_kr in (False, True):
        model = build(kernel_num=4, return_kr=return_kr).train()
        sum(o.sum() for o in model(torch.randn(2, 3, 64, 64))).backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None]
        assert not missing, missing


def test_state_dict_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build(kernel_num=4, return_kr=True).eval()
    for layer in model.dynamic_layers.values():
        layer.generator.temperature.fill_(7.)
    path = str(tmp_path / 'kr.pth')
    save_checkpoint({'state_dict': model.state_dict()}, path)
    torch.manual_seed(1)
    other = build(kernel_num=4, return_kr=True).eval()
    load_checkpoint(other, path, strict=True)
    img = torch.randn(2, 3, 64, 64)
    for a, b in zip(model(img), other(img)):
        torch.testing.assert_close(a, b)
    assert all(layer.generator.temperature == 7.
               for layer in other.dynamic_layers.values())


def test_checkpoint_of_other_kernel_num_is_refused(tmp_path):
    path = str(tmp_path / 'kr4.pth')
    save_checkpoint({'state_dict': build(kernel_num=4).state_dict()}, path)
    model = build(kernel_num=1)
    # mmengine's non-strict loading would only log a size mismatch
    with pytest.raises(ValueError) as err:
        load_checkpoint(model, path, strict=False)
    msg = str(err.value)
    assert "'backbone.layer1.0.conv1'" in msg and 'kernel_num=1' in msg
    assert '(4, 64, 64, 3, 3)' in msg and '(1, 64, 64, 3, 3)' in msg


def test_init_weights_draws_candidates_independently():
    model = build(kernel_num=4)
    model.init_weights()
    weight = model.backbone.layer1[0].conv1.weight
    assert not torch.allclose(weight[0], weight[1])
    # Kaiming normal, fan_out: std = sqrt(2 / (C_out * k * k))
    assert abs(weight.std().item() - (2 / (64 * 9))**0.5) < 0.005
    assert all(isinstance(m, DynamicLayer)
               for m in model.dynamic_layers.values())


def test_every_parameter_trains_in_a_vit():
    """Nothing of the wrapped backbone is frozen unless asked for."""
    model = MODELS.build(
        dict(type='KRBackbone',
             backbone=dict(type='VisionTransformer', arch='deit-tiny',
                           img_size=64, patch_size=16),
             kr_dims=16))
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert not frozen, frozen
