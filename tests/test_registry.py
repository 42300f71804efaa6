"""The method registry: a method declared in this file, outside mmkr, builds
a KR backbone; every method's convs honour ``conv_path``."""
from typing import List, NamedTuple

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmpretrain.registry import MODELS

from mmkr.engine.hooks import KRTemperatureHook
from mmkr.models.backbones import KRBackbone
from mmkr.models.layers import (METHODS, DynamicConvBase, DynamicMethod,
                                RepresentationFusion, TemperatureSchedule,
                                get_method, method_names, register_method)
from mmkr.models.layers.autotune import AUTOTUNER

RESNET = dict(type='ResNet', depth=18, base_channels=8)


class Gains(NamedTuple):
    gain: torch.Tensor  # (B, C_out)


class GainGenerator(nn.Module):
    """KG of the toy method: one gain per output channel, sigmoid(logit / τ)
    times the network's shared scale."""

    def __init__(self, hidden_dims: int, out_channels: int):
        super().__init__()
        self.fc = nn.Linear(hidden_dims, out_channels)
        self.state_dims = out_channels
        self.register_buffer('temperature', torch.tensor(1.))

    def forward(self, hidden):
        return self.fc(hidden)

    def activate(self, logits):
        return Gains(torch.sigmoid(logits / self.temperature))


class SharedScale(nn.Module):
    """Network-level state of the toy method: one scale every layer reads,
    and the names of the layers it was built for."""

    def __init__(self, statics, **options):
        super().__init__()
        self.names = list(statics)
        self.options = options
        self.scale = nn.Parameter(torch.tensor(2.))


class GainConv2d(DynamicConvBase):
    """y = scale · g ⊙ conv(X, W), g = sigmoid(W_g h~ / τ): a toy method,
    with two exact paths."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1,
                 padding=0, dilation=1, groups=1, bias=False,
                 padding_mode='zeros', kr_dims=0, generate_kr=True,
                 network_state=None, name=None):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, padding_mode, 'toy_gain',
                         kr_dims)
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels // groups,
                        *self.kernel_size) * 0.1)
        self.fusion = RepresentationFusion(in_channels, kr_dims, 8, None)
        self.generator = GainGenerator(8, out_channels)
        self.build_kr_generator(generate_kr)
        self.network_state = [network_state]  # shared, not a child module
        self.name = name

    def reset_parameters(self):
        pass

    def valid_paths(self) -> List[str]:
        return ['scale_output', 'scale_kernel']

    def rule_path(self, height, width):
        return 'scale_output'

    def _forward_scale_output(self, x, att):
        out = F.conv2d(x, self.weight, None, self.stride, self.padding,
                       self.dilation, self.groups)
        return out * att.gain[:, :, None, None]

    def _forward_scale_kernel(self, x, att):
        return torch.cat([
            F.conv2d(x[b:b + 1], self.weight * att.gain[b, :, None, None,
                                                        None], None,
                     self.stride, self.padding, self.dilation, self.groups)
            for b in range(x.shape[0])
        ])

    def forward_kr(self, x, d=None):
        att, d_next = self.attend(x.mean(dim=(2, 3)), d)
        out = self.run_path(x, att) * self.network_state[0].scale
        return self.finish(out, x), d_next


@pytest.fixture
def toy_method():
    method = register_method(
        DynamicMethod(
            name='toy_gain', code=1000, display_name='Toy gain',
            layers={nn.Conv2d: GainConv2d},
            temperature=TemperatureSchedule(2., 0., 1., positive=False),
            network_state=SharedScale))
    yield method
    del METHODS['toy_gain']


def test_a_method_declared_outside_mmkr_builds_a_kr_backbone(toy_method):
    backbone = KRBackbone(RESNET, method='toy_gain', kr_dims=8,
                          return_kr=True)
    layers = backbone.dynamic_layers
    convs = [m for m in MODELS.build(RESNET).modules()
             if isinstance(m, nn.Conv2d)]
    assert len(layers) == len(convs) - 1 and all(
        isinstance(layer, GainConv2d) for layer in layers.values())
    # the network state saw every layer, in run order, with the options
    state = backbone.network_state
    assert state.names == backbone.dynamic_names
    assert state.options == dict(kr_dims=8)
    assert [layer.name for layer in layers.values()] == state.names
    assert all(layer.network_state[0] is state for layer in layers.values())
    assert 'network_state.scale' in backbone.state_dict()
    assert int(backbone.state_dict()[
        'backbone.layer1.0.conv1.method_code']) == 1000

    x = torch.randn(2, 3, 32, 32)
    *_, d = backbone(x)
    assert d.shape == (2, 8)
    sum(out.sum() for out in backbone(x)).backward()
    assert state.scale.grad is not None and state.scale.grad != 0
    assert all(p.grad is not None for p in backbone.parameters()
               if p.requires_grad)


def test_toy_method_joins_names_options_and_temperature(toy_method):
    assert 'toy_gain' in method_names()
    assert get_method('toy_gain') is toy_method
    with pytest.raises(ValueError, match="'toy_gain' has no option "
                       "'kernel_num'"):
        KRBackbone(RESNET, method='toy_gain', kernel_num=4)
    with pytest.raises(KeyError, match="code 1000 .* already taken by "
                       "'toy_gain'"):
        register_method(DynamicMethod('toy_other', 1000, 'x', {}))

    backbone = KRBackbone(RESNET, method='toy_gain', kr_dims=8)
    hook = KRTemperatureHook()
    assert [hook.schedule('toy_gain').value(i, 4) for i in (0, 2, 4, 9)] == [
        2., 1., 0., 0.]
    found = hook._temperatures(backbone)
    assert list(found) == ['toy_gain']
    assert len(found['toy_gain']) == len(backbone.dynamic_names)


def test_a_checkpoint_of_another_method_is_refused_naming_both(toy_method):
    toy = KRBackbone(RESNET, method='toy_gain', kr_dims=8)
    odconv = KRBackbone(RESNET, kr_dims=8)
    with pytest.raises(ValueError, match="'backbone.layer1.0.conv1' .* holds "
                       "a 'toy_gain' layer there, this model a 'odconv' one"):
        odconv.load_state_dict(toy.state_dict(), strict=False)


def test_every_path_of_a_registered_method_is_exact(toy_method):
    torch.manual_seed(0)
    backbone = KRBackbone(RESNET, method='toy_gain', kr_dims=8).double()
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    outs = {}
    for path in ('scale_kernel', None, 'autotune'):
        backbone.set_conv_path(path)
        outs[path] = backbone(x)[0]
    torch.testing.assert_close(outs[None], outs['scale_kernel'])
    torch.testing.assert_close(outs[None], outs['autotune'])


@pytest.mark.parametrize('method, options, paths', [
    ('weightnet', {}, ['grouped', 'unfold']),
    ('dcd', dict(method_cfg=dict(layout='resnet_basic')),
     ['latent', 'merged']),
])
def test_conv_path_drives_every_method(method, options, paths):
    """``conv_path`` forces each exact path of DCD and WeightNet (not only
    ODConv's), each computes the same function, and the autotuner times
    them."""
    torch.manual_seed(0)
    backbone = KRBackbone(
        dict(type='ResNet', depth=18, num_stages=1, strides=(1, ),
             dilations=(1, ), out_indices=(0, )),
        method=method, kr_dims=8, **options).double().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    outs = []
    for path in paths:
        backbone.set_conv_path(path)
        assert {layer.path for layer in backbone.dynamic_layers.values()
                } == {path}
        outs.append(backbone(x)[0])
    torch.testing.assert_close(outs[0], outs[1])
    AUTOTUNER.clear()
    backbone.set_conv_path('autotune')
    with torch.no_grad():
        torch.testing.assert_close(backbone(x)[0], outs[0])
    assert AUTOTUNER.timed > 0 and set(AUTOTUNER.choices.values()) <= set(
        paths)
    with pytest.raises(ValueError, match=f"conv_path='kfold' is not an exact "
                       'path of layer1.0.conv1'):
        backbone.set_conv_path('kfold')
