"""KernelWarehouse: the layer against a slow reference written from the
paper's formulas, the warehouses a network shares, τ in a real Runner, and
the authors' parameter counts."""
import importlib.util
import math
import os
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmpretrain import get_model
from mmpretrain.registry import MODELS
from test_head_and_hook import temperature_runner
from test_init import (build_initialised, check_group, kaiming_fan_out,
                       linear_rules, norm, pytorch_linear)
from test_layers import KR_DIMS, grads, randomise
from test_methods import inputs, randomise_norms

import mmkr  # noqa: F401
from mmkr.models.layers import (KWConv2d, KWGenerator, WarehouseManager,
                                warehouse_names)
from mmkr.testing.reference import reference_kw_conv2d

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# (in, out, kernel, stride, padding, dilation, groups)
SHAPES = {
    '3x3': (8, 8, 3, 1, 1, 1, 1),
    '1x1': (8, 16, 1, 1, 0, 1, 1),
    'strided 3x3': (8, 12, 3, 2, 1, 1, 1),
    'strided 1x1': (8, 16, 1, 2, 0, 1, 1),
    'dilated': (8, 8, 3, 1, 2, 2, 1),
    'grouped': (8, 12, 3, 1, 1, 1, 4),
    'depthwise': (8, 8, 3, 1, 1, 1, 8),
}
# (cell_num_ratio, cell_inplane_ratio = cell_outplane_ratio): KW 1x, 4x and
# 1/2x (the authors' 1/2x halves the cells' channels too)
RATIOS = {'1x': (1, 1), '4x': (4, 1), '1/2x': (0.5, 0.5)}


def kw_layer(shape, ratio=(1, 1), kr_dims=0, norm='bn', bias=False,
             nonlocal_basis_ratio=1., tau=0.3):
    """The layer of ``shape``, second of two convs that share a warehouse
    (so that its cells start after another layer's), with random attention
    weights, BatchNorm statistics and τ, in float64."""
    cin, cout, k, stride, padding, dilation, groups = shape
    statics = {
        'layer1.0.conv1': nn.Conv2d(8, 8, 3, padding=1),
        'layer1.0.conv2': nn.Conv2d(cin, cout, k, stride, padding, dilation,
                                    groups, bias)
    }
    manager = WarehouseManager(
        statics, cell_num_ratio=ratio[0], cell_inplane_ratio=ratio[1],
        cell_outplane_ratio=ratio[1],
        nonlocal_basis_ratio=nonlocal_basis_ratio).double()
    layer = KWConv2d.from_static(
        statics['layer1.0.conv2'], network_state=manager,
        name='layer1.0.conv2', norm=norm, kr_dims=kr_dims).double()
    layer = randomise_norms(randomise(layer))
    layer.generator.temperature.fill_(tau)
    return layer


def assert_paths_equal_reference(layer, x, d):
    """Every valid path: output, d_{i+1} and the gradients of x, d, the
    layer's parameters and the warehouse equal the reference's."""
    leaves = ([x] + ([d] if d is not None else []) + list(layer.parameters())
              + [layer.cells])
    ref_out, ref_d = reference_kw_conv2d(layer, x, d)
    ref_grads = grads((ref_out, ref_d), leaves)
    for path in layer.valid_paths():
        layer.path = path
        out, d_next = layer.forward_kr(x, d)
        torch.testing.assert_close(out, ref_out, rtol=1e-9, atol=1e-9)
        if ref_d is None:
            assert d_next is None
        else:
            torch.testing.assert_close(d_next, ref_d, rtol=1e-9, atol=1e-9)
        for g, ref_g in zip(grads((out, d_next), leaves), ref_grads):
            torch.testing.assert_close(g, ref_g, rtol=1e-9, atol=1e-9)
        assert out.is_contiguous(memory_format=torch.channels_last) == (
            x.is_contiguous(memory_format=torch.channels_last)
            and not x.is_contiguous())


@pytest.mark.parametrize('shape', SHAPES, ids=str)
@pytest.mark.parametrize('ratio', RATIOS, ids=str)
@pytest.mark.parametrize('kr_dims,norm', [(0, 'bn'), (KR_DIMS, 'ln')])
def test_kw_equals_reference(shape, ratio, kr_dims, norm):
    layer = kw_layer(SHAPES[shape], RATIOS[ratio], kr_dims, norm)
    assert set(layer.valid_paths()) >= {'grouped', 'unfold'}
    assert_paths_equal_reference(layer, *inputs(SHAPES[shape][0], 3,
                                                 kr_dims))


@pytest.mark.parametrize('shape', ['3x3', 'strided 1x1', 'depthwise'])
@pytest.mark.parametrize('batch,channels_last', [(1, False), (2, True)])
def test_kw_batch_one_and_channels_last(shape, batch, channels_last):
    layer = kw_layer(SHAPES[shape], RATIOS['4x'], KR_DIMS, 'bn', bias=True)
    assert_paths_equal_reference(
        layer, *inputs(SHAPES[shape][0], batch, KR_DIMS, channels_last))


@pytest.mark.parametrize('tau', [0., 1.])
def test_kw_non_local_basis_and_the_ends_of_tau(tau):
    """The authors' ResNet-50 1/2x maps the other layers' cells through a
    basis; τ = 1 is the one-hot initial assignment alone."""
    layer = kw_layer(SHAPES['grouped'], RATIOS['1/2x'], KR_DIMS,
                     nonlocal_basis_ratio=0.25, tau=tau)
    assert layer.generator.basis is not None
    assert_paths_equal_reference(layer, *inputs(8, 3, KR_DIMS))


def test_initial_assignment_selects_the_layers_own_cells():
    """At τ = 1 every mixture is the cell β assigns it (the zero cell for
    half of them at 1/2x): the kernel is the layer's own cells, in order."""
    for ratio in ('1x', '4x', '1/2x'):
        layer = kw_layer(SHAPES['strided 3x3'], RATIOS[ratio], tau=1.)
        x, _ = inputs(8)
        att, _ = layer.attend(x.mean(dim=(2, 3)))
        alloc = layer.allocation
        expected = torch.zeros(alloc.mixtures, alloc.cells + 1,
                               dtype=torch.float64)
        expected[torch.arange(alloc.mixtures),
                 torch.tensor(alloc.assignment)] = 1
        torch.testing.assert_close(att.cells,
                                   expected[:, :-1].expand(3, -1, -1))
        step = max(int(RATIOS[ratio][0]), 1)
        owned = [c for c in alloc.assignment if c >= 0]
        assert owned == list(range(alloc.start, alloc.end, step))
        # at 1/2x the authors' pattern: mixture i takes a cell where
        # i mod 2 = ⌊i / 2⌋ mod 2, the zero cell otherwise
        assigned = [i for i, c in enumerate(alloc.assignment) if c >= 0]
        assert assigned == [
            i for i in range(alloc.mixtures)
            if ratio != '1/2x' or i % 2 == i // 2 % 2
        ]


def test_batchnorm_in_the_attention_refuses_a_training_batch_of_one():
    layer = kw_layer(SHAPES['3x3']).train()
    with pytest.raises(ValueError, match="attention_norm='bn'.*more than 1"):
        layer.forward_kr(torch.randn(1, 8, 5, 5, dtype=torch.float64))
    layer.forward_kr(torch.randn(2, 8, 5, 5, dtype=torch.float64))
    kw_layer(SHAPES['3x3'], norm='ln').train().forward_kr(
        torch.randn(1, 8, 5, 5, dtype=torch.float64))


def tiny_resnet(depth=18, **options):
    return MODELS.build(
        dict(type='KRBackbone',
             backbone=dict(type='ResNet', depth=depth, base_channels=8),
             method='kernelwarehouse', with_kr=False, attention_norm='bn',
             method_cfg=dict(options)))


def test_layers_of_a_group_read_one_warehouse():
    """ResNet's rule (kw_resnet.py): one warehouse per stage, the first conv
    of a stage and its downsample taking the previous stage's."""
    model = tiny_resnet()
    layers = model.dynamic_layers
    manager = model.network_state
    stage1 = ['layer1.0.conv1', 'layer1.1.conv2', 'layer2.0.conv1',
              'layer2.0.downsample.0']
    stage2 = ['layer2.0.conv2', 'layer2.1.conv1', 'layer3.0.conv1']
    for group in (stage1, stage2):
        assert all(layers[n].cells is layers[group[0]].cells for n in group)
    assert layers['layer2.0.conv2'].cells is not layers['layer1.0.conv1'].cells
    assert len(manager.warehouses) == 4
    assert {p.data_ptr() for p in model.parameters()} >= {
        layers[n].cells.data_ptr() for n in stage1 + stage2}
    assert all(not any(p is layer.cells for p in layer.parameters())
               for layer in layers.values())


@pytest.mark.parametrize('ratio', [(1, 1), (4, 1), (0.25, 0.5)])
def test_cells_per_warehouse_follow_the_authors_rule(ratio):
    """n = ⌊ratio · Σ_l (C_out / c_out)(C_in / c_in)·k²⌋, cells of
    c = ⌊gcd · in/out-plane ratio⌋ channels; the layers own disjoint
    consecutive cells that cover the warehouse."""
    model = tiny_resnet(cell_num_ratio=ratio[0], cell_inplane_ratio=ratio[1],
                        cell_outplane_ratio=ratio[1])
    manager = model.network_state
    layers = model.dynamic_layers
    for index, warehouse in enumerate(manager.warehouses):
        group = [n for n, layer in layers.items()
                 if layer.allocation.warehouse == index]
        convs = [layers[n] for n in group]
        cell_out = int(math.gcd(*(c.out_channels for c in convs)) * ratio[1])
        cell_in = int(math.gcd(*(c.in_channels for c in convs)) * ratio[1])
        kernel_cells = sum(c.out_channels // cell_out * c.in_channels //
                           cell_in * c.kernel_size[0] * c.kernel_size[1]
                           for c in convs)
        assert warehouse.shape == (int(kernel_cells * ratio[0]), cell_out,
                                   cell_in, 1, 1)
        spans = sorted((c.allocation.start, c.allocation.end) for c in convs)
        assert spans[0][0] == 0 and spans[-1][1] == warehouse.shape[0]
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_every_parameter_gets_a_gradient():
    model = tiny_resnet(cell_num_ratio=0.5, cell_inplane_ratio=0.5,
                        cell_outplane_ratio=0.5).train()
    for module in model.modules():
        if isinstance(module, KWGenerator):
            module.temperature.fill_(0.4)
    sum(out.sum() for out in model(torch.randn(2, 3, 32, 32))).backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not p.grad.abs().sum()]
    assert not missing


def test_warehouse_names_reproduce_the_authors_groups():
    """MobileNetV2 4x (``sharing_range=('layer',)``, kw_mobilenetv2.py):
    a stage's first block joins the previous stage; the projection 1x1 of
    the expansion-free first block and the last 1x1 conv are projections.
    ConvNeXt: each downsample conv and the stem alone, depthwise and
    pointwise convs of a stage in two warehouses."""
    mobilenet = MODELS.build(dict(type='MobileNetV2', widen_factor=0.5))
    convs = {n: m for n, m in mobilenet.named_modules()
             if isinstance(m, nn.Conv2d)}
    names = warehouse_names(convs, ('layer', ), 'block')
    assert names['conv1.conv'] == 'conv1:conv0'
    assert names['layer1.0.conv.1.conv'] == names[
        'layer2.0.conv.2.conv'] == 'layer1:pwconv0'
    assert names['layer2.0.conv.0.conv'] == 'layer1:pwconv1'
    assert names['layer2.1.conv.1.conv'] == 'layer2:dwconv0'
    assert names['conv2.conv'] == names['layer7.0.conv.2.conv'] == names[
        'layer6.1.conv.2.conv'] == 'layer6:pwconv0'
    assert len(set(names.values())) == 19

    convnext = MODELS.build(
        dict(type='ConvNeXt', arch=dict(depths=[2, 2, 2, 2],
                                        channels=[8, 16, 24, 32]),
             linear_pw_conv=False))
    convs = {n: m for n, m in convnext.named_modules()
             if isinstance(m, nn.Conv2d)}
    names = warehouse_names(convs, ('layer', 'pwconv'), None)
    assert names['downsample_layers.0.0'] == 'downsample_layers.0:conv0'
    assert names['downsample_layers.2.1'] == 'downsample_layers.2:conv0'
    assert names['stages.1.0.pointwise_conv1'] == names[
        'stages.1.1.pointwise_conv2'] == 'stages.1:pwconv'
    assert names['stages.1.1.depthwise_conv'] == 'stages.1:dwconv0'
    assert len(set(names.values())) == 1 + 3 + 4 * 2


def test_bad_options_are_refused():
    convs = {'a.0.c': nn.Conv2d(8, 8, 3), 'a.0.d': nn.Conv2d(8, 12, 1)}
    with pytest.raises(ValueError, match="sequence of .*'layer_conv'"):
        WarehouseManager(convs, sharing_range='layer_conv')
    with pytest.raises(ValueError, match='handover must be one of'):
        WarehouseManager(convs, handover='stage')
    with pytest.raises(ValueError, match='one value or one per warehouse'):
        WarehouseManager(convs, cell_num_ratio=(1, 2, 4))
    with pytest.raises(ValueError, match='initial assignment'):
        WarehouseManager(convs, cell_num_ratio=1.5)
    with pytest.raises(ValueError, match='do not tile'):
        WarehouseManager(convs, cell_inplane_ratio=2)
    with pytest.raises(TypeError, match='nn.Conv2d only; a.0.e is Linear'):
        WarehouseManager(dict(convs, **{'a.0.e': nn.Linear(8, 8)}))
    with pytest.raises(TypeError, match='unknown options'):
        WarehouseManager(convs, cell_ratio=2)


def test_checkpoint_of_another_method_is_refused_naming_both():
    odconv = MODELS.build(
        dict(type='KRBackbone',
             backbone=dict(type='ResNet', depth=18, base_channels=8),
             method='odconv', with_kr=False))
    with pytest.raises(ValueError, match="'odconv'.*'kernelwarehouse'"):
        tiny_resnet().load_state_dict(odconv.state_dict())


def test_tau_falls_from_one_to_zero_across_epochs_in_a_runner(tmp_path):
    """4 iterations per epoch, τ annealed over 1.5 epochs, 3 epochs: every
    generator runs iteration i at τ = 1 - i / 6 until i = 6, then at 0."""
    runner = temperature_runner(tmp_path, 'kernelwarehouse', max_epochs=3)
    generators = [
        m for m in runner.model.modules() if isinstance(m, KWGenerator)
    ]
    assert len(generators) == len(runner.model.backbone.dynamic_names) > 1
    seen = {id(g): [] for g in generators}

    def record(module, args):
        seen[id(module)].append(module.temperature.item())

    for generator in generators:
        generator.register_forward_pre_hook(record)
    runner.train()
    expected = [max(1 - i / 6, 0.) for i in range(12)]
    for generator in generators:
        assert seen[id(generator)] == pytest.approx(expected)


def authors_params() -> dict:
    """get_flops.py's parameter counts of KernelWarehouse's own models
    (built from the authors' JSON configs), by config."""
    spec = importlib.util.spec_from_file_location(
        'get_flops', osp.join(REPO, 'tools', 'analysis_tools',
                              'get_flops.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return {
        config: params
        for config, params in tool.AUTHORS_PARAMS.items()
        if config.startswith('configs/kernelwarehouse/')
    }


AUTHORS_PARAMS = authors_params()


def test_every_kw_config_has_the_authors_count():
    configs = {
        f'configs/kernelwarehouse/{name}'
        for name in os.listdir(osp.join(REPO, 'configs', 'kernelwarehouse'))
        if name.endswith('.py')
    }
    assert set(AUTHORS_PARAMS) == configs


@pytest.mark.parametrize('config', sorted(AUTHORS_PARAMS))
def test_parameters_equal_the_authors(config):
    """With KR off, KW's parameters are those of the authors' model, the
    static layers, norms and classifier included."""
    model = get_model(Config.fromfile(osp.join(REPO, config)), device='cpu')
    assert sum(p.numel() for p in model.parameters()) == \
        AUTHORS_PARAMS[config]


@pytest.mark.parametrize('config', ['resnet18_kw4x', 'resnet18_kw1d4x'])
def test_kw_starts_by_its_authors_rule(config):
    """As training initialises it (kernel_warehouse.py's Attention and
    Warehouse_Manager.allocate, kw_resnet.py): each layer's own cells
    Kaiming normal as one (cells·c_out, c_in, 1, 1) kernel, the attention's
    FCs Kaiming normal fan-out with zero biases, BatchNorm 1 and 0, and the
    classifier PyTorch's default."""
    model = build_initialised(
        Config.fromfile(
            osp.join(REPO, 'configs', 'kernelwarehouse', f'{config}.py')),
        seed=0)
    for name, layer in model.backbone.dynamic_layers.items():
        alloc = layer.allocation
        rules = dict(
            cells=kaiming_fan_out((alloc.end - alloc.start) * alloc.cell_out),
            **linear_rules('generator.fc', layer.generator.fc,
                           kaiming_fan_out(layer.generator.fc.out_features)),
            **norm('fusion.norm.'))
        rules['fusion.fc.weight'] = kaiming_fan_out(layer.fusion.out_dims)
        params = [('cells', layer.cells[alloc.start:alloc.end])] + [
            (k, p) for k, p in layer.named_parameters() if k in rules
        ]
        assert len(params) == len(rules)
        check_group(name, params, rules)
    fc = model.head.fc
    check_group('head', list(fc.named_parameters()),
                pytorch_linear(fc))
