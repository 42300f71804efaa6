"""Every method starts where its authors' code starts (docs/initialisation.md).

For each config of the poster's ResNet-18 and MobileNetV2 0.5x rows, the
model is built and initialised as training does, and every parameter is
checked against the rule its method's authors use, written here from their
code as a formula of the layer's shape (not as copied numbers): a constant
exactly, a random group by the standard deviation of parameter / rule's std
pooled over the group's layers, which must be 1 within sampling error. And
every demo method, trained a few steps on a handful of digits, lowers its
loss from its starting point.
"""
import json
import math
import os.path as osp
import subprocess
import sys
from typing import Dict, NamedTuple, Optional

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.models.heads import ClsHead

import mmkr  # noqa: F401
from mmkr.analysis import parameter_groups
from mmkr.models.heads import DCDClsHead
from mmkr.models.layers import (DCDConv2d, DynamicConv2d, SpectralKREncoder,
                                WeightNetConv2d)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
from init_stats import build_initialised  # noqa: E402


class Rule(NamedTuple):
    """A constant (``std`` None) or a zero-mean draw of std ``std``."""
    value: float = 0.
    std: Optional[float] = None


def const(value: float) -> Rule:
    return Rule(value)


def normal(std: float) -> Rule:
    return Rule(std=std)


def uniform(bound: float) -> Rule:
    return Rule(std=bound / math.sqrt(3))


def pytorch_linear(linear: nn.Linear) -> Dict[str, Rule]:
    """nn.Linear's own reset: weight and bias U(±1/√fan_in)."""
    rule = uniform(1 / math.sqrt(linear.in_features))
    return dict(weight=rule, bias=rule)


def kaiming_fan_out(fan_out: int) -> Rule:
    return normal(math.sqrt(2 / fan_out))


def norm(prefix: str) -> Dict[str, Rule]:
    """A norm's gamma 1, beta 0."""
    return {f'{prefix}weight': const(1.), f'{prefix}bias': const(0.)}


def linear_rules(prefix: str, linear: nn.Linear, weight: Rule,
                 bias: Rule = const(0.)) -> Dict[str, Rule]:
    rules = {f'{prefix}.weight': weight}
    if linear.bias is not None:
        rules[f'{prefix}.bias'] = bias
    return rules


def kr_generator_rules(layer) -> Dict[str, Rule]:
    """KR's K: PyTorch's default."""
    k = layer.kr_generator
    if k is None:
        return {}
    rules = {}
    for name in ('fc1', 'fc2'):
        for key, rule in pytorch_linear(getattr(k, name)).items():
            rules[f'kr_generator.{name}.{key}'] = rule
    rules.update(norm('kr_generator.norm.'))
    return rules


def mixing_rules(layer: DynamicConv2d) -> Dict[str, Rule]:
    """ODConv (modules/odconv.py Attention, ODConv2d): candidates and every
    attention 1x1 conv Kaiming fan-out, zero biases, norm 1/0; DyConv alike;
    CondConv as timm's _init_weight_goog: experts N(0, 2 / (k²·C_out/g)),
    routing U(±1/√(fan_in + fan_out)), zero bias."""
    condconv = layer.method == 'condconv'
    kh, kw = layer.kernel_size
    fan_out = layer.out_channels * kh * kw
    rules = {'weight': kaiming_fan_out(
        fan_out // layer.groups if condconv else fan_out), 'bias': const(0.)}

    def attention(linear):
        if condconv:
            return uniform(1 / math.sqrt(linear.in_features +
                                         linear.out_features))
        return kaiming_fan_out(linear.out_features)

    fc = getattr(layer.fusion, 'fc', None)
    if fc is not None:
        rules.update(linear_rules('fusion.fc', fc, attention(fc)))
        rules.update(norm('fusion.norm.'))
    for name, head in layer.generator.heads.items():
        rules.update(linear_rules(f'generator.heads.{name}', head,
                                  attention(head)))
    return {**rules, **kr_generator_rules(layer)}


def dcd_rules(layer: DCDConv2d) -> Dict[str, Rule]:
    """DCD (resnet_dcd.py / mobilenetv2_dcd.py): convs N(0, 2 / (k²·C_out)),
    BatchNorms 1/0, the linears N(0, 0.01) in MobileNetV2 and PyTorch's
    default in ResNet."""
    kh, kw = layer.kernel_size
    rules = {
        'weight': kaiming_fan_out(layer.out_channels * kh * kw),
        'q.weight': kaiming_fan_out(layer.sizes.dim),
        'p.weight': kaiming_fan_out(layer.out_channels),
        'bias': const(0.),
    }
    for bn in ('bn1', 'bn2'):
        rules.update(norm(f'{bn}.'))
    for prefix in ('fusion.fc', 'fusion.se', 'generator.phi',
                   'generator.scale'):
        linear = layer.get_submodule(prefix)
        weight = (normal(0.01) if layer.layout == 'mobilenetv2' else
                  pytorch_linear(linear)['weight'])
        rules[f'{prefix}.weight'] = weight
    return {**rules, **kr_generator_rules(layer)}


def weightnet_rules(layer: WeightNetConv2d) -> Dict[str, Rule]:
    """WeightNet (shufflenet_v2.py _initialize_weights): every conv
    N(0, std = 1 / weight.shape[1]) of MegEngine's weight, which for the
    grouped wn_fc2 (WeightNet: G·C_out groups; WeightNet_DW: C groups) is
    its outputs per group: std G / (C_in·k²), G = 2; depthwise 1 / k²."""
    kh, kw = layer.kernel_size
    fc2_std = (1 / (kh * kw) if layer.groups > 1 else 2 /
               (layer.in_channels * kh * kw))
    rules = {
        'fusion.fc.weight': normal(1 / layer.fusion.fc.in_features),
        'fusion.fc.bias': const(0.),
        'generator.fc1.weight': normal(1 / layer.generator.fc1.in_features),
        'generator.fc1.bias': const(0.),
        'generator.fc2.weight': normal(fc2_std),
        'bias': const(0.),
    }
    return {**rules, **kr_generator_rules(layer)}


def head_rules(head: ClsHead, network: str) -> Dict[str, Rule]:
    """ODConv's and mmpretrain's classifiers N(0, 0.01), zero bias; DCD's
    dynamic one per network (PyTorch's default in ResNet, whose DYCls the
    loop leaves alone; N(0, 0.01) in MobileNetV2)."""
    rules = {}
    for name, m in head.named_modules():
        if isinstance(m, nn.Linear):
            if isinstance(head, DCDClsHead) and network == 'ResNet':
                linear = {f'{name}.{k}': r
                          for k, r in pytorch_linear(m).items()}
            else:
                linear = linear_rules(name, m, normal(0.01))
            rules.update(linear)
        elif isinstance(m, nn.BatchNorm1d):
            rules.update(norm(f'{name}.'))
    return rules


def encoder_rules(encoder: SpectralKREncoder) -> Dict[str, Rule]:
    """KR's d_0 projection: PyTorch's default, LayerNorm 1/0."""
    rules = {f'proj.{k}': r for k, r in pytorch_linear(encoder.proj).items()}
    return {**rules, **norm('norm.')}


def static_rules(module: nn.Module) -> Dict[str, Rule]:
    """ODConv's resnet.py / mobilenetv2.py (and the dynamic networks' static
    layers): convs Kaiming fan-out (PyTorch's fan-out, C_out·k²), every
    BatchNorm gamma 1, beta 0."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return dict(weight=kaiming_fan_out(module.out_channels * kh * kw),
                    bias=const(0.))
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return norm('')
    raise AssertionError(f'no initialisation rule for {module}')


def expected_rules(model: nn.Module) -> Dict[str, Rule]:
    """parameter name -> the rule its authors draw it by."""
    backbone = model.backbone
    network = type(getattr(backbone, 'backbone', backbone)).__name__
    unit_rules = {
        DynamicConv2d: mixing_rules,
        DCDConv2d: dcd_rules,
        WeightNetConv2d: weightnet_rules,
        SpectralKREncoder: encoder_rules,
        ClsHead: lambda head: head_rules(head, network),
    }
    rules = {}
    for name, module in model.named_modules():
        for unit, unit_rule in unit_rules.items():
            if isinstance(module, unit):
                rules.update({
                    f'{name}.{k}': r
                    for k, r in unit_rule(module).items()
                })
    for name, module in model.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            full = f'{name}.{pname}'
            if full not in rules:
                rules[full] = static_rules(module)[pname]
    return rules


def check_group(key: str, params, rules: Dict[str, Rule]):
    """Constants exactly; draws: std and mean of parameter / rule's std,
    pooled over the group, 1 and 0 within 6 standard errors."""
    drawn = [(n, p) for n, p in params if rules[n].std is not None]
    for name, p in params:
        rule = rules[name]
        if rule.std is None:
            assert torch.all(p == rule.value), (
                f'{name}: expected all {rule.value}, got mean '
                f'{p.float().mean():.4g}')
    if not drawn:
        return
    z = torch.cat([
        p.detach().double().flatten() / rules[n].std for n, p in drawn
    ])
    error = 6 / math.sqrt(2 * (z.numel() - 1))
    assert abs(z.std().item() - 1) < error, (
        f'{key}: std / rule = {z.std().item():.4g} (rule: '
        f'{[rules[n].std for n, _ in drawn][:3]}...), allowed 1 ± {error:.3g}')
    assert abs(z.mean().item()) < 6 / math.sqrt(z.numel()), (
        f'{key}: mean / rule = {z.mean().item():.4g}')


TABLE_CONFIGS = [
    f'configs/{path}.py' for path in (
        'baseline/resnet18', 'odconv/resnet18_odconv1',
        'odconv/resnet18_odconv4', 'dyconv/resnet18_dyconv4',
        'condconv/resnet18_condconv8', 'dcd/resnet18_dcd',
        'weightnet/resnet18_weightnet', 'kr/resnet18_kr4',
        'baseline/mobilenet-v2-050', 'odconv/mobilenet-v2-050_odconv4',
        'dyconv/mobilenet-v2-050_dyconv4',
        'condconv/mobilenet-v2-050_condconv8', 'dcd/mobilenet-v2-050_dcd',
        'weightnet/mobilenet-v2-050_weightnet', 'kr/mobilenet-v2-050_kr4')
]


@pytest.fixture(scope='module', params=TABLE_CONFIGS)
def initialised(request) -> nn.Module:
    """The config's model as training builds and initialises it (each
    config built once for the tests below)."""
    return build_initialised(
        Config.fromfile(osp.join(REPO, request.param)), seed=0)


def test_every_parameter_starts_by_its_authors_rule(initialised):
    rules = expected_rules(initialised)
    for key, params in parameter_groups(initialised).items():
        check_group(key, params, rules)


def test_resnet_residual_branches_start_at_gamma_one(initialised):
    """ODConv's resnet.py / od_resnet.py and DCD's resnet_dcd.py draw every
    BatchNorm gamma = 1, the last one of each residual branch included
    (mmpretrain's zero_init_residual would zero it)."""
    blocks = [(name, m) for name, m in initialised.named_modules()
              if type(m).__name__ == 'BasicBlock']
    if not blocks:
        pytest.skip('no residual BasicBlock in this network')
    for name, block in blocks:
        assert torch.all(block.norm2.weight == 1), name


def test_weightnet_kernels_start_at_the_authors_scale():
    """A generated kernel's std follows from fc2's rule: with the gates
    sigmoid(·) in (0, 1), the kernel of the full form is a sum of M/G = 1
    gate times fc2's weights, so its std is below 2 / (C_in·k²), not near 1
    as a unit-std fc2 gives."""
    layer = WeightNetConv2d(64, 64, 3, padding=1)
    kernels = layer.generator.kernels(
        layer.generator.activate(layer.generator(
            layer.fusion(torch.randn(4, 64)))))
    assert kernels.shape == (4, 64, 64, 3, 3)
    assert kernels.std() < 2 / (64 * 9)


# ------------------------------------------------------- a few steps each
DEMO_CONFIGS = [
    f'configs/demo/resnet18_{name}_digits.py'
    for name in ('static', 'odconv1', 'odconv4', 'dyconv4', 'condconv8',
                 'dcd', 'weightnet', 'kr1', 'kr4')
]
STEPS = 15


@pytest.fixture(scope='module')
def digits(tmp_path_factory) -> str:
    """Real digits, 2 per class: 20 training images."""
    data = str(tmp_path_factory.mktemp('digits') / 'digits')
    subprocess.run([
        sys.executable, 'tools/dataset_converters/prepare_digits_demo.py',
        '--out-dir', data, '--per-class', '4', '--val-ratio', '0.5'
    ], cwd=REPO, check=True, capture_output=True)
    return data


class LossRecorder(Hook):

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(outputs['loss'].item())


@pytest.mark.parametrize('config', DEMO_CONFIGS)
def test_every_method_learns_from_its_start(config, digits, tmp_path):
    """The config's model, optimizer and temperature hook (annealed over
    the first step here), STEPS steps on the same 20 digits (one batch an
    epoch): the loss falls."""
    cfg = Config.fromfile(osp.join(REPO, config))
    recorder = LossRecorder()
    hooks = [h for h in cfg.get('custom_hooks', [])
             if h['type'] == 'KRTemperatureHook']
    loader = cfg.train_dataloader
    loader.dataset.data_root = digits
    runner = Runner(
        model=cfg.model,
        work_dir=str(tmp_path),
        train_dataloader=dict(loader, batch_size=20, num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=STEPS),
        optim_wrapper=cfg.optim_wrapper,
        custom_hooks=[*hooks, recorder],
        default_hooks=dict(checkpoint=None, logger=None),
        randomness=dict(seed=0),
        default_scope='mmpretrain')
    runner.train()
    losses = recorder.losses
    assert len(losses) == STEPS and all(map(math.isfinite, losses))
    # a stuck network stays near ln(10) = 2.3; a learning one, even where
    # the temperature's annealing makes the first steps jumpy, is well
    # below its first loss within the last third of the steps
    assert min(losses[-STEPS // 3:]) < 0.85 * losses[0], losses


# ------------------------------------------------ tools/analysis_tools/init_stats.py
def test_init_stats_tool_writes_and_compares(tmp_path, capsys):
    """--out writes every group's statistics; --against the same config
    and seed differs by nothing, against another seed by sampling error,
    and against a zero-init-residual start it shows gamma's difference."""
    import init_stats
    config = 'configs/demo/resnet18_static_digits.py'
    out = str(tmp_path / 'stats.json')
    init_stats.main([osp.join(REPO, config), '--out', out])
    with open(out) as f:
        saved = json.load(f)['groups']
    # 1 stem, 16 block and 3 downsample BatchNorms, every gamma 1
    assert saved['BatchNorm2d/weight'] == dict(numel=saved[
        'BatchNorm2d/weight']['numel'], mean=1.0, std=0.0, tensors=20)
    assert saved['LinearClsHead/fc.weight']['std'] == pytest.approx(
        0.01, rel=0.05)
    capsys.readouterr()

    init_stats.main([osp.join(REPO, config), '--against', out, '--seed', '1'])
    table = capsys.readouterr().out.split('\n\n')[1]
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    assert abs(float(rows['Conv2d/weight'][3])) < 0.01
    assert abs(float(rows['Conv2d/weight'][4])) < 4  # in sampling errors

    init_stats.main([
        osp.join(REPO, config), '--against', out, '--cfg-options',
        'model.backbone.zero_init_residual=True'
    ])
    table = capsys.readouterr().out.split('\n\n')[1]
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    # 8 of the 20 BatchNorms (each block's last) start at gamma 0
    assert float(rows['BatchNorm2d/weight'][-1]) < -0.2


def test_init_stats_tool_refuses_a_foreign_reference(tmp_path):
    import init_stats
    path = tmp_path / 'ref.json'
    path.write_text(json.dumps({'Conv2d/weight': {'std': 0.1}}))
    with pytest.raises(ValueError, match='--against .*"groups"'):
        init_stats.main(['configs/demo/resnet18_static_digits.py',
                         '--against', str(path)])
    path.write_text(json.dumps({'groups': {'Conv2d/weight': {'std': 0.1}}}))
    with pytest.raises(ValueError, match='needs exactly the keys'):
        init_stats.main(['configs/demo/resnet18_static_digits.py',
                         '--against', str(path)])
