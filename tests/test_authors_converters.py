"""The converters of ODConv's, DCD's and KernelWarehouse's released
checkpoints.

Without the authors' code: each test builds, from an mmkr model with random
weights, the file the authors' training script writes (their key layout,
their 1x1-conv shapes, ``{'state_dict': ...}`` with DDP's ``module.``;
KernelWarehouse: ``{'model': ..., 'model_ema': ..., 'args': Namespace}``),
converts it and checks that every tensor comes back and the logits agree.
"""
import argparse
import copy
import os
import re
import os.path as osp
import subprocess
import sys

import mmpretrain
import pytest
import torch

from mmkr.models.utils import (authors_state_dict, convert_authors_checkpoint,
                               convert_authors_state, dcd_network, kw_network,
                               odconv_network)
from mmkr.models.utils.authors_checkpoints import build_model
from mmkr.models.utils.authors_networks import (dcd_mobilenetv2, dcd_resnet,
                                                kw_convnext_tiny,
                                                kw_mobilenetv2, kw_resnet,
                                                odconv_mobilenetv2,
                                                odconv_resnet)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# (the authors' network, the converter's detector); each network names its
# mmkr config
NETWORKS = {
    'odconv-resnet18-1x': (odconv_resnet(18, 1), odconv_network),
    'odconv-mobilenetv2-0.5x-4x': (odconv_mobilenetv2(0.5, 4), odconv_network),
    'dcd-resnet18': (dcd_resnet(18), dcd_network),
    'dcd-mobilenetv2-0.5x-no-dropout':
    (dcd_mobilenetv2(0.5, dropout=False), dcd_network),
}


def randomized(model: torch.nn.Module,
               seed: int,
               size: int = 64) -> torch.nn.Module:
    """``model`` with every tensor of its state dict moved off its
    initialisation, in float64 and eval mode: weights perturbed, then the
    BatchNorm statistics measured on random images (as training would:
    with the initial ones, DCD's latent path grows without bound) and the
    counters drawn at random; the images ``size`` x ``size``."""
    gen = torch.Generator().manual_seed(seed)
    model = model.double()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(
                0.1 *
                torch.randn(param.shape, generator=gen, dtype=param.dtype))
        norms = [
            m for m in model.modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # the mean over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randn(8,
                              3,
                              size,
                              size,
                              generator=gen,
                              dtype=torch.float64),
                  mode='tensor')
        for norm in norms:
            norm.momentum = 0.1
            norm.num_batches_tracked.fill_(
                int(torch.randint(1, 10**6, (), generator=gen)))
    return model.eval()


def authors_file(path, model, network, ddp=True, **extra):
    """Writes the authors' training-script checkpoint of ``model`` (with
    DDP's ``module.`` where ``ddp``); returns its state dict without it."""
    state = authors_state_dict(model.state_dict(), network, model)
    saved = {f'module.{k}': v for k, v in state.items()} if ddp else state
    torch.save(
        dict(epoch=100,
             best_acc1=torch.tensor(70.1),
             state_dict=saved,
             **extra), path)
    return state


def assert_same_logits(state, config, source, size=64):
    """The model of ``config`` loaded with ``state`` gives ``source``'s
    logits to the last bit (float64, eval)."""
    converted = build_model(config).double().eval()
    converted.load_state_dict(state)
    images = torch.randn(2, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(converted(images, mode='tensor'),
                                   source(images, mode='tensor'),
                                   rtol=0,
                                   atol=0)


def truncated_copy(path, out):
    """Writes the first half of ``path`` to ``out``; returns ``out``."""
    with open(path, 'rb') as src, open(out, 'wb') as dst:
        dst.write(src.read()[:os.path.getsize(path) // 2])
    return out


def run_tool(tool, *args):
    """The stdout lines of ``tools/model_converters/<tool>`` run on
    ``args``."""
    return subprocess.run(
        [
            sys.executable,
            osp.join(ROOT, 'tools/model_converters', tool), *args
        ],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, PYTHONPATH=ROOT)).stdout.strip().splitlines()


def assert_kr_starts_at_source_logits(source, cfg, size=64):
    """The KR model of ``cfg`` converted from ``source`` (convert_dynamic_
    to_kr) gives the source's logits; F of layer3.1.conv2 reads d through
    zero columns and h through the source's. Returns the KR model and
    state."""
    from mmpretrain.registry import MODELS

    from mmkr.models.utils import convert_dynamic_to_kr
    kr = MODELS.build(cfg.model)
    kr.init_weights()
    state = convert_dynamic_to_kr(source.state_dict(), kr.double())
    kr.load_state_dict(state)
    kr.eval()
    layer = 'backbone.backbone.layer3.1.conv2.'
    fc = state[f'{layer}fusion.fc.weight']
    assert (fc[:, :64] == 0).all()
    assert torch.equal(fc[:, 64:],
                       source.state_dict()[f'{layer}fusion.fc.weight'])
    images = torch.randn(2, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(kr(images, mode='tensor'),
                                   source(images, mode='tensor'),
                                   rtol=1e-9,
                                   atol=1e-9)
    return kr, state


@pytest.mark.parametrize('name', list(NETWORKS))
def test_round_trip(name, tmp_path):
    network, detector = NETWORKS[name]
    source = randomized(build_model(network.config), seed=1)
    path = str(tmp_path / 'model_best.pth.tar')
    authors_file(path, source, network, ddp=name.startswith('odconv'))

    found, state = convert_authors_checkpoint(path, detector, 'its method')
    assert found == network
    expected = source.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    assert_same_logits(state, network.config, source)


@pytest.fixture(scope='module')
def odconv_file(tmp_path_factory):
    """A randomized ODConv MobileNetV2 0.5x 4x, its network and its file as
    the authors' DDP training writes it."""
    network = odconv_mobilenetv2(0.5, 4)
    model = randomized(build_model(network.config), seed=2)
    path = str(tmp_path_factory.mktemp('odconv') / 'od_mbv2_050_4x.pth.tar')
    state = authors_file(path, model, network)
    return model, network, path, state


def test_refuses_a_file_of_another_network(odconv_file, tmp_path):
    dcd = dcd_mobilenetv2(0.5)
    model = build_model(dcd.config)
    path = str(tmp_path / 'dcd.pth.tar')
    authors_file(path, model, dcd)
    with pytest.raises(ValueError,
                       match=r"not a checkpoint of ODConv's networks\. It "
                       r'looks like DCD MobileNetV2 0\.5x '
                       r'\(configs/dcd/mobilenet-v2-050_dcd\.py\)'):
        convert_authors_checkpoint(path, odconv_network, 'ODConv')

    _, _, odconv_path, _ = odconv_file
    with pytest.raises(ValueError,
                       match=r'resnet18_odconv4\.py has no module '
                       r'backbone\.backbone\.conv1\.conv .* the checkpoint '
                       r'is ODConv MobileNetV2 0\.5x \(4x, K=4\)'):
        convert_authors_checkpoint(odconv_path, odconv_network, 'ODConv',
                                   'configs/odconv/resnet18_odconv4.py')


def test_refuses_a_file_whose_tensors_do_not_all_map(odconv_file, tmp_path):
    _, network, _, state = odconv_file
    extra = dict(state,
                 **{'features.1.conv.0.0.attention.extra': torch.zeros(1)})
    path = str(tmp_path / 'extra.pth.tar')
    torch.save(dict(state_dict=extra), path)
    with pytest.raises(ValueError,
                       match=r'does not fit configs/odconv/mobilenet-v2-050_'
                       r"odconv4\.py: 1 of its tensors .*\['features\.1\.conv"
                       r"\.0\.0\.attention\.extra'\]\).* It looks like ODConv "
                       r'MobileNetV2 0\.5x'):
        convert_authors_checkpoint(path, odconv_network, 'ODConv')

    missing = dict(state)
    del missing['features.5.conv.1.0.attention.spatial_fc.bias']
    torch.save(dict(state_dict=missing), path)
    with pytest.raises(ValueError,
                       match=r"1 tensors of the model are not in "
                       r"it \(first: \['features\.5\.conv\.1\.0\.attention"
                       r"\.spatial_fc\.bias'\]\)"):
        convert_authors_checkpoint(path, odconv_network, 'ODConv')

    wrong = dict(state)
    wrong['features.5.conv.2.weight'] = wrong['features.5.conv.2.weight'][:2]
    torch.save(dict(state_dict=wrong), path)
    with pytest.raises(ValueError,
                       match=r'features\.5\.conv\.2\.weight has '
                       r'shape \(2, .* backbone\.backbone\.layer3\.1\.conv\.2'
                       r'\.conv\.weight .* has \(4, '):
        convert_authors_checkpoint(path, odconv_network, 'ODConv')


def test_refuses_truncated_and_code_holding_files(odconv_file, tmp_path):
    _, _, path, state = odconv_file
    truncated = truncated_copy(path, str(tmp_path / 'truncated.pth.tar'))
    with pytest.raises(Exception, match='truncated or not a checkpoint'):
        convert_authors_checkpoint(truncated, odconv_network, 'ODConv')

    code = str(tmp_path / 'code.pth.tar')
    torch.save(dict(state_dict=state, hook=os.system), code)
    with pytest.raises(Exception,
                       match=r'holds Python objects besides '
                       r'tensors and plain containers '
                       r'\(first: posix\.system\).* '
                       r'refused \(weights_only=True\)'):
        convert_authors_checkpoint(code, odconv_network, 'ODConv')


def test_command_line_and_get_model(odconv_file, tmp_path):
    source, network, path, _ = odconv_file
    out = run_tool('odconv_to_mmkr.py', path,
                   str(tmp_path / 'mobilenet-v2-050_odconv4_in1k'))
    assert ('ODConv MobileNetV2 0.5x (4x, K=4); config configs/odconv/'
            'mobilenet-v2-050_odconv4.py (inferred from the tensor shapes)'
            in out[0])
    written = out[-1]
    assert re.fullmatch(
        re.escape(str(tmp_path)) + r'/mobilenet-v2-050_odconv4_in1k-'
        r'[0-9a-f]{8}\.pth', written)
    model = mmpretrain.get_model('mobilenet-v2-050_odconv4',
                                 pretrained=written).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(images, mode='tensor'),
                                   source.float()(images, mode='tensor'))
    source.double()


def test_kr_from_a_converted_odconv_network_starts_at_its_logits():
    """KR (K = 1, attention_norm 'bn') from a trained ODConv ResNet-18 1x:
    the block convs keep ODConv's tensors, the shortcuts (static in ODConv)
    start neutral, d reaches no output; the KR model's step-0 logits are
    the ODConv network's."""
    from mmengine.config import Config
    source = randomized(build_model('configs/odconv/resnet18_odconv1.py'),
                        seed=3)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/kr/resnet18_kr1.py'))
    cfg.model.backbone.attention_norm = 'bn'
    kr, _ = assert_kr_starts_at_source_logits(source, cfg)
    assert kr.backbone.dynamic_layers['layer2.0.downsample.0'] is not None


def authors_odconv2d(x, t, prefix, stride=1, padding=1, eps=1e-5):
    """ODConv2d.forward of OSVAI/ODConv modules/odconv.py at T = 1, on the
    authors' tensors ``t`` of the layer at ``prefix``, written from their
    code: the reference the key map must reproduce."""
    import torch.nn.functional as F

    def att(name):
        return t.get(f'{prefix}.attention.{name}')

    b, c, height, width = x.shape
    h = F.conv2d(x.mean((2, 3), keepdim=True), att('fc.weight'))
    h = F.batch_norm(h, att('bn.running_mean'), att('bn.running_var'),
                     att('bn.weight'), att('bn.bias'), False, 0., eps).relu()

    def head(name):
        return F.conv2d(h, att(f'{name}_fc.weight'), att(f'{name}_fc.bias'))

    weight = t[f'{prefix}.weight']
    k_num, c_out, _, k, _ = weight.shape
    channel = torch.sigmoid(head('channel')).view(b, -1, 1, 1)
    filt = torch.sigmoid(head('filter')).view(b, -1, 1, 1)
    spatial = torch.sigmoid(head('spatial')).view(b, 1, 1, 1, k, k)
    kernel = (F.softmax(head('kernel').view(b, -1, 1, 1, 1, 1), dim=1)
              if att('kernel_fc.weight') is not None else 1.)
    kernels = (spatial * kernel * weight[None]).sum(1)
    out = F.conv2d((x * channel).reshape(1, -1, height, width),
                   kernels.reshape(-1, c, k, k),
                   None,
                   stride,
                   padding,
                   groups=b)
    return out.view(b, c_out, *out.shape[-2:]) * filt


@pytest.mark.parametrize('kernel_num', [1, 4])
def test_key_map_follows_the_authors_layout_and_formulas(kernel_num):
    """The authors' names and shapes, written out from their code, and
    their ODConv2d's output on their tensors: a swapped or misshaped entry
    of the key map, invisible to a round trip through the same map, fails
    here."""
    network = odconv_resnet(18, kernel_num)
    model = randomized(build_model(network.config), seed=4)
    theirs = authors_state_dict(model.state_dict(), network, model)
    k = kernel_num
    expected = {
        'conv1.weight': (64, 3, 7, 7),
        'layer2.0.conv1.weight': (k, 128, 64, 3, 3),
        'layer2.0.conv1.attention.fc.weight': (16, 64, 1, 1),
        'layer2.0.conv1.attention.bn.running_var': (16, ),
        'layer2.0.conv1.attention.channel_fc.weight': (64, 16, 1, 1),
        'layer2.0.conv1.attention.filter_fc.weight': (128, 16, 1, 1),
        'layer2.0.conv1.attention.spatial_fc.bias': (9, ),
        'layer2.0.downsample.0.weight': (128, 64, 1, 1),
        'layer2.0.downsample.1.running_mean': (128, ),
        'fc.weight': (1000, 512),
    }
    if k > 1:
        expected['layer2.0.conv1.attention.kernel_fc.weight'] = (k, 16, 1, 1)
    else:
        assert 'layer2.0.conv1.attention.kernel_fc.weight' not in theirs
    for key, shape in expected.items():
        assert tuple(theirs[key].shape) == shape, key
    layer = model.backbone.backbone.layer2[1].conv2  # 128 -> 128
    x = torch.randn(2, 128, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x), authors_odconv2d(x, theirs, 'layer2.1.conv2'))


def released(network, detector, slow=False):
    return pytest.param(network,
                        detector,
                        id=network.name,
                        marks=[pytest.mark.slow] if slow else [])


# Every checkpoint the authors released (OSVAI/ODConv README, Results and
# Models; liyunsheng13/dcd README; OSVAI/KernelWarehouse README, Results and
# Models, but its hand-tuned MobileNetV2 1/2x): the network found in its
# layout. The larger KernelWarehouse builds are slow.
RELEASED = [
    *[
        released(odconv_resnet(depth, k), odconv_network)
        for depth, ks in ((18, (1, 4)), (50, (1, 4)), (101, (1, 2)))
        for k in ks
    ],
    *[
        released(odconv_mobilenetv2(width, k), odconv_network)
        for width in (0.5, 0.75, 1.0) for k in (1, 4)
    ],
    released(dcd_resnet(50), dcd_network),
    released(dcd_mobilenetv2(1.0), dcd_network),
    *[
        released(kw_resnet(18, size), kw_network)
        for size in ('1d4x', '1d2x', '1x', '2x', '4x')
    ],
    *[
        released(kw_resnet(50, size), kw_network, slow=True)
        for size in ('1d2x', '1x', '4x')
    ],
    *[
        released(kw_mobilenetv2(width, size), kw_network)
        for width in (0.5, 1.0) for size in ('1x', '4x')
    ],
    released(kw_convnext_tiny(), kw_network, slow=True),
]


@pytest.mark.parametrize('network,detector', RELEASED)
def test_every_released_network_is_found_and_maps_completely(
        network, detector):
    """The layout of each released network is recognised as that network
    (its config inferred: KernelWarehouse's size included) and its tensors
    fill every tensor of the config but the mmkr-only ones (method codes,
    temperatures); the round trips above check the values."""
    model = build_model(network.config)
    theirs = authors_state_dict(model.state_dict(), network, model)
    assert detector(theirs) == network
    state = convert_authors_state(theirs, network, model)
    assert list(state) == list(model.state_dict())
    assert len(theirs) == sum(
        not key.endswith(('method_code', 'generator.temperature'))
        for key in state)


def authors_conv_basic_dy(x, t, prefix, stride=1, eps=1e-5):
    """conv_basic_dy.forward of liyunsheng13/dcd resnet_dcd.py on the
    authors' tensors ``t`` of the layer at ``prefix``, from their code."""
    import torch.nn.functional as F

    def p(name):
        return t[f'{prefix}.{name}']

    def bn(u, name):
        return F.batch_norm(u, p(f'{name}.running_mean'),
                            p(f'{name}.running_var'), p(f'{name}.weight'),
                            p(f'{name}.bias'), False, 0., eps)

    b, c = x.shape[:2]
    r = F.conv2d(x, p('conv.weight'), None, stride, 1)
    y = F.adaptive_avg_pool2d(x, 2).view(b, c * 4) @ p('fc.0.weight').T

    def hsigmoid(u):  # DCD's Hsigmoid: relu6(u + 3) / 3
        return F.relu6(u + 3.) / 3.

    y = y * hsigmoid(y @ p('fc.1.fc.0.weight').T)
    dim = p('q.weight').shape[0]
    phi = (y @ p('fc_phi.weight').T).view(b, dim, dim)
    scale = hsigmoid(y @ p('fc_scale.weight').T).view(b, -1, 1, 1)
    out = bn(F.conv2d(x, p('q.weight'), None, stride), 'bn1')
    height, width = out.shape[-2:]
    out = out.view(b, dim, -1)
    out = bn(phi @ out, 'bn2') + out
    return F.conv2d(out.view(b, -1, height, width), p('p.weight')) + scale * r


def test_dcd_key_map_follows_the_authors_formula():
    """DCD's BN_1 and BN_2, or Φ's and Λ's maps, swapped in the key map
    would survive a round trip; the authors' conv_basic_dy on their tensors
    does not."""
    network = dcd_resnet(18)
    model = randomized(build_model(network.config), seed=5)
    theirs = authors_state_dict(model.state_dict(), network, model)
    assert tuple(theirs['classifier.1.cls_q.weight'].shape) == (32, 512)
    layer = model.backbone.backbone.layer2[1].conv1
    x = torch.randn(2, 128, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x), authors_conv_basic_dy(x, theirs, 'layer2.1.conv1'))


# KernelWarehouse: the files of ConvNeXt's training script (OSVAI/
# KernelWarehouse main.py), 'model' without DDP's prefix

KW_NETWORKS = {
    'kw-resnet18-1/4x': kw_resnet(18, '1d4x'),
    'kw-mobilenetv2-0.5x-1x': kw_mobilenetv2(0.5, '1x'),
    'kw-convnext-tiny-1x': kw_convnext_tiny(),
}


def kw_authors_file(path, model, network, ema=None, prefix='', **extra):
    """Writes the checkpoint of the authors' main.py for ``model`` (and the
    EMA model ``ema``): 'model' (and 'model_ema') with ``prefix`` on every
    key, the optimizer, the epoch, the loss scaler and the argparse
    Namespace. Returns the authors' state dict of ``model``."""
    state = authors_state_dict(model.state_dict(), network, model)
    checkpoint = dict(model={
        prefix + k: v
        for k, v in state.items()
    },
                      optimizer=dict(state={0: dict(step=torch.tensor(3.))},
                                     param_groups=[dict(lr=4e-3, params=[0])]),
                      epoch=299,
                      scaler=dict(scale=65536.0, growth_tracker=7),
                      args=argparse.Namespace(model='kw',
                                              kw_config='kw1x.json',
                                              model_ema=ema is not None),
                      **extra)
    if ema is not None:
        checkpoint['model_ema'] = authors_state_dict(ema.state_dict(), network,
                                                     ema)
    torch.save(checkpoint, path)
    return state


def shifted(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` with every floating tensor but τ moved by 0.01:
    an EMA whose weights differ from the model's everywhere."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        for key, value in other.state_dict().items():
            if value.is_floating_point() and not key.endswith('temperature'):
                value.add_(0.01)
    return other


def assert_converts_to(state, model):
    """Every tensor of the converted ``state`` equals ``model``'s, τ = 0
    included."""
    expected = model.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    temperatures = [v for k, v in state.items() if k.endswith('temperature')]
    assert temperatures and all(float(t) == 0. for t in temperatures)


@pytest.mark.parametrize('name', [
    'kw-resnet18-1/4x', 'kw-mobilenetv2-0.5x-1x',
    pytest.param('kw-convnext-tiny-1x', marks=pytest.mark.slow)
])
def test_kw_round_trip(name, tmp_path):
    """'model' (not the EMA beside it) converts into every tensor and
    the logits of the source, in float64; the Namespace in 'args' is read,
    the optimizer and the EMA left."""
    network = KW_NETWORKS[name]
    source = randomized(build_model(network.config), seed=6, size=32)
    path = str(tmp_path / 'checkpoint-best.pth')
    kw_authors_file(path, source, network, ema=shifted(source))

    found, state = convert_authors_checkpoint(path,
                                              kw_network,
                                              'KernelWarehouse',
                                              state_key='model')
    assert found == network
    assert_converts_to(state, source)
    assert_same_logits(state, network.config, source, size=32)


def test_kw_convnext_key_map_round_trip():
    """ConvNeXt-T's layout (its γ as (1, C, 1, 1), the convs' biases, the
    LayerNorm attention, the warehouses in the authors' order: stem and
    downsample convs first) is found, and every tensor comes back (the
    file format as for the other networks)."""
    network = KW_NETWORKS['kw-convnext-tiny-1x']
    model = build_model(network.config)
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point() and value.dim():
                value.copy_(torch.randn(value.shape, generator=gen))
    theirs = authors_state_dict(model.state_dict(), network, model)
    assert tuple(theirs['stages.2.4.gamma'].shape) == (1, 384, 1, 1)
    assert tuple(theirs['warehouse_manager.weights.1'].shape) == (4, 192, 96,
                                                                  1, 1)
    assert tuple(theirs['warehouse_manager.weights.4'].shape) == (147, 96, 1,
                                                                  1, 1)
    assert kw_network(theirs) == network
    assert_converts_to(convert_authors_state(theirs, network, model), model)


@pytest.fixture(scope='module')
def kw_file(tmp_path_factory):
    """A randomized KernelWarehouse ResNet-18 1/4x, its network, its EMA
    and its file as the authors' main.py writes it."""
    network = kw_resnet(18, '1d4x')
    model = randomized(build_model(network.config), seed=8, size=32)
    ema = shifted(model)
    path = str(tmp_path_factory.mktemp('kw') / 'kw1d4x_resnet18.pth')
    state = kw_authors_file(path, model, network, ema=ema)
    return model, ema, network, path, state


def test_kw_model_ema_and_module_prefix(kw_file, tmp_path):
    model, ema, network, path, state = kw_file
    _, converted = convert_authors_checkpoint(path,
                                              kw_network,
                                              'KernelWarehouse',
                                              state_key='model_ema')
    assert_converts_to(converted, ema)

    ddp = str(tmp_path / 'ddp.pth')
    kw_authors_file(ddp, model, network, prefix='module.')
    _, converted = convert_authors_checkpoint(ddp,
                                              kw_network,
                                              'KernelWarehouse',
                                              state_key='model')
    assert_converts_to(converted, model)

    with pytest.raises(Exception,
                       match=r'expected a state dict of tensors \(bare or '
                       r'under "model_ema"\), found a dict \(its entries: '
                       r"\['model', 'optimizer', 'epoch', 'scaler', 'args'\]"):
        convert_authors_checkpoint(ddp,
                                   kw_network,
                                   'KernelWarehouse',
                                   state_key='model_ema')


def test_kw_refuses_code_truncated_files_and_other_networks(
        kw_file, odconv_file, tmp_path):
    model, _, network, path, state = kw_file
    code = str(tmp_path / 'code.pth')
    kw_authors_file(code, model, network, hook=os.system)
    with pytest.raises(Exception,
                       match=r'holds Python objects besides tensors and '
                       r'plain containers \(first: posix\.system\)'):
        convert_authors_checkpoint(code,
                                   kw_network,
                                   'KernelWarehouse',
                                   state_key='model')

    truncated = truncated_copy(path, str(tmp_path / 'truncated.pth'))
    with pytest.raises(Exception, match='truncated or not a checkpoint'):
        convert_authors_checkpoint(truncated,
                                   kw_network,
                                   'KernelWarehouse',
                                   state_key='model')

    _, _, odconv_path, _ = odconv_file
    with pytest.raises(ValueError,
                       match=r"not a checkpoint of KernelWarehouse's "
                       r'networks\. It looks like ODConv MobileNetV2 0\.5x '
                       r'\(4x, K=4\)'):
        convert_authors_checkpoint(odconv_path, kw_network, 'KernelWarehouse')
    with pytest.raises(ValueError,
                       match=r"not a checkpoint of ODConv's networks\. It "
                       r'looks like KernelWarehouse ResNet-18 \(1/4x\) '
                       r'\(configs/kernelwarehouse/resnet18_kw1d4x\.py\)'):
        convert_authors_checkpoint(path,
                                   odconv_network,
                                   'ODConv',
                                   state_key='model')

    with pytest.raises(ValueError,
                       match=r'layer1\.0\.conv1\.attention\.fc2\.weight has '
                       r'shape \(2052, 16\) in the checkpoint; .* of '
                       r'configs/kernelwarehouse/resnet18_kw1x\.py has '
                       r'\(513, 16\)'):
        convert_authors_checkpoint(path, kw_network, 'KernelWarehouse',
                                   'configs/kernelwarehouse/resnet18_kw1x.py',
                                   'model')
    with pytest.raises(ValueError,
                       match=r'mobilenet-v2-050_kw1x\.py has no module '
                       r'backbone\.backbone\.bn1 .* the checkpoint is '
                       r'KernelWarehouse ResNet-18 \(1/4x\)'):
        convert_authors_checkpoint(
            path, kw_network, 'KernelWarehouse',
            'configs/kernelwarehouse/mobilenet-v2-050_kw1x.py', 'model')


def test_kw_refuses_unmapped_tensors_and_unknown_sizes(kw_file, tmp_path):
    _, _, _, _, state = kw_file
    path = str(tmp_path / 'odd.pth')
    extra = dict(state,
                 **{'layer3.1.conv2.attention.temp_bias': torch.zeros(3)})
    torch.save(dict(model=extra), path)
    with pytest.raises(ValueError,
                       match=r'does not fit configs/kernelwarehouse/'
                       r'resnet18_kw1d4x\.py: 1 of its tensors .*\['
                       r"'layer3\.1\.conv2\.attention\.temp_bias'\]\).* "
                       r'It looks like KernelWarehouse ResNet-18 \(1/4x\)'):
        convert_authors_checkpoint(path,
                                   kw_network,
                                   'KernelWarehouse',
                                   state_key='model')

    resized = dict(state)
    resized['warehouse_manager.weights.0'] = torch.zeros(28, 32, 32, 1, 1)
    torch.save(dict(model=resized), path)
    with pytest.raises(ValueError,
                       match=r'a KernelWarehouse resnet18 whose first '
                       r'warehouse has 28 cells of 32x32 channels: none of '
                       r'the sizes mmkr has configs for'):
        convert_authors_checkpoint(path,
                                   kw_network,
                                   'KernelWarehouse',
                                   state_key='model')


def authors_kwconv2d(x,
                     t,
                     prefix,
                     warehouse,
                     start,
                     out_channels,
                     kernel_size,
                     stride=1,
                     padding=0,
                     eps=1e-5):
    """KWConv2d.forward (with its Attention) of OSVAI/KernelWarehouse
    modules/kernel_warehouse.py at temp_value = 0, on the authors' tensors
    ``t`` of the layer at ``prefix``, written from their code: its cells are
    ``warehouse_manager.weights.{warehouse}``, its own ones from ``start``
    (their start_cell_idx). The reference the key map must reproduce."""
    import torch.nn.functional as F

    def att(name):
        return t.get(f'{prefix}.attention.{name}')

    batch, channels, height, width = x.shape
    h = F.linear(x.mean((2, 3)), att('fc1.weight'), att('fc1.bias'))
    if att('norm1.running_mean') is not None:  # nn.BatchNorm1d
        h = F.batch_norm(h, att('norm1.running_mean'),
                         att('norm1.running_var'), att('norm1.weight'),
                         att('norm1.bias'), False, 0., eps)
    else:  # nn.LayerNorm
        h = F.layer_norm(h, h.shape[-1:], att('norm1.weight'),
                         att('norm1.bias'), eps)
    z = F.linear(h.relu(), att('fc2.weight'), att('fc2.bias'))
    cells = t[f'warehouse_manager.weights.{warehouse}']
    num_cells, cell_out, cell_in = cells.shape[:3]
    if att('fc3.weight') is not None:  # map_to_cell_basis
        num_nonlocal, num_basis = att('fc3.weight').shape
        num_local = num_cells - num_nonlocal
        z = z.reshape(-1, num_local + num_basis + 1)
        local, basis, zero = (z[:, :num_local], z[:, num_local:-1], z[:, -1:])
        basis = basis @ att('fc3.weight').T
        z = torch.cat([basis[:, :start], local, basis[:, start:], zero], 1)
        z = z.reshape(batch, -1) + att('basis_bias')
    z = z.reshape(-1, num_cells + 1)
    z = z / (z.abs().sum(1, keepdim=True) + 1e-3)
    mixed = z[:, :-1] @ cells.reshape(num_cells, -1)
    mixed = mixed.reshape(batch, kernel_size**2, out_channels // cell_out,
                          channels // cell_in, cell_out, cell_in, 1, 1)
    kernels = mixed.permute(0, 2, 4, 3, 5, 1, 6,
                            7).reshape(-1, channels, kernel_size, kernel_size)
    out = F.conv2d(x.reshape(1, -1, height, width),
                   kernels,
                   None,
                   stride,
                   padding,
                   groups=batch)
    out = out.view(batch, out_channels, *out.shape[-2:])
    bias = t.get(f'{prefix}.bias')
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def perturbed(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """``model`` in float64 and eval mode with every parameter and the
    BatchNorm statistics drawn at random (no forward pass needed)."""
    gen = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    with torch.no_grad():
        for param in model.parameters():
            param.add_(
                0.1 *
                torch.randn(param.shape, generator=gen, dtype=param.dtype))
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.1, generator=gen)
                module.running_var.uniform_(0.5, 1.5, generator=gen)
    return model


# (network, layer, its warehouse and first own cell in the authors' model,
# its conv: out channels, kernel size, stride, padding)
KW_LAYERS = {
    # warehouse 1 (stage 2); the cells 32 x 32 channels
    'resnet18-1/4x':
    (kw_resnet(18, '1d4x'), 'layer2.1.conv2', 1, 0, (128, 3, 1, 1)),
    # warehouse 0 (stage 1), after layer1.0.conv2's 36 x 0.5 cells; the
    # other layers' cells through the non-local basis
    'resnet50-1/2x':
    (kw_resnet(50, '1d2x'), 'layer1.0.conv3', 0, 18, (256, 1, 1, 0)),
    # warehouse 7 (stage 2's pointwise convs, after the stem's, the three
    # downsample convs' and stage 1's two); LayerNorm and a bias
    'convnext-tiny':
    (kw_convnext_tiny(), 'stages.1.0.pointwise_conv1', 7, 0, (768, 1, 1, 0)),
}


@pytest.mark.parametrize('name', list(KW_LAYERS))
def test_kw_key_map_follows_the_authors_formula(name):
    """The authors' KWConv2d on their tensors: a key map that swapped
    tensors of equal shapes, or a warehouse, and a mixture order or basis
    placement other than the authors' would survive a round trip; they do
    not survive this."""
    network, layer_name, warehouse, start, conv = KW_LAYERS[name]
    model = perturbed(build_model(network.config), seed=9)
    theirs = authors_state_dict(model.state_dict(), network, model)
    theirs_name = layer_name.replace('pointwise_conv', 'pwconv')
    layer = model.backbone.backbone.get_submodule(layer_name)
    x = torch.randn(2, layer.in_channels, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x),
            authors_kwconv2d(x, theirs, theirs_name, warehouse, start, *conv))


def test_kw_command_line_and_get_model(kw_file, tmp_path):
    """--ema converts 'model_ema', says so and which network it found, and
    prints the hashed path last; mmpretrain.get_model loads it and gives
    the EMA model's logits."""
    _, ema, _, path, _ = kw_file
    out = run_tool('kernelwarehouse_to_mmkr.py', path,
                   str(tmp_path / 'resnet18_kw1d4x_in1k'), '--ema')
    assert ("'model_ema'; KernelWarehouse ResNet-18 (1/4x); config configs/"
            'kernelwarehouse/resnet18_kw1d4x.py (inferred from the tensor '
            'shapes)' in out[0])
    written = out[-1]
    assert re.fullmatch(
        re.escape(str(tmp_path)) + r'/resnet18_kw1d4x_in1k-[0-9a-f]{8}\.pth',
        written)
    model = mmpretrain.get_model('resnet18_kw1d4x', pretrained=written).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            model(images, mode='tensor'),
            copy.deepcopy(ema).float()(images, mode='tensor'))


def test_kr_from_a_converted_kw_network_starts_at_its_logits():
    """KR on KernelWarehouse from a trained KernelWarehouse ResNet-18 (the
    1/4x of configs/kr/resnet18_kw1x_kr.py's family, as
    resnet18_kw4x_kr_ft-from-kw4x.py starts from the 4x): every layer keeps
    the source's tensors and F reads d through zero columns, the warehouses
    are the source's, τ stays 0 and d reaches no output; the KR model's
    step-0 logits are the source's."""
    from mmengine.config import Config
    source = randomized(
        build_model('configs/kernelwarehouse/resnet18_kw1d4x.py'),
        seed=10,
        size=32)
    cfg = Config.fromfile(osp.join(ROOT, 'configs/kr/resnet18_kw1x_kr.py'))
    cfg.model.backbone.method_cfg.update(cell_num_ratio=0.25,
                                         cell_inplane_ratio=0.5,
                                         cell_outplane_ratio=0.5)
    _, state = assert_kr_starts_at_source_logits(source, cfg, size=32)
    for index in range(4):
        key = f'backbone.network_state.warehouses.{index}'
        assert torch.equal(state[key], source.state_dict()[key])
    temperatures = [v for k, v in state.items() if k.endswith('temperature')]
    assert temperatures and all(float(t) == 0. for t in temperatures)


def test_kr_from_kw4x_config_starts_from_the_converted_kw4x():
    """configs/kr/resnet18_kw4x_kr_ft-from-kw4x.py: KR on the 4x warehouses
    of the source, no τ annealing, the converted checkpoint loaded."""
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs/kr/resnet18_kw4x_kr_ft-from-kw4x.py'))
    source = Config.fromfile(
        osp.join(ROOT, 'configs/kernelwarehouse/resnet18_kw4x.py'))
    assert cfg.model.backbone.with_kr
    for option in ('cell_num_ratio', 'cell_inplane_ratio',
                   'cell_outplane_ratio', 'sharing_range', 'handover'):
        assert (cfg.model.backbone.method_cfg[option] ==
                source.model.backbone.method_cfg[option]), option
    assert cfg.model.backbone.attention_norm == 'bn'
    assert not [
        h for h in cfg.custom_hooks if h['type'] == 'KRTemperatureHook'
    ]
    assert cfg.load_from == 'checkpoints/resnet18_kw4x_kr_from-kw4x.pth'


# config folder -> (the authors' download page, the converter)
CONVERTERS = {
    'odconv': ('https://github.com/OSVAI/ODConv#results-and-models',
               'odconv_to_mmkr.py'),
    'dcd': ('https://github.com/liyunsheng13/dcd#evaluate-dcd-with-imagenet',
            'dcd_to_mmkr.py'),
    'kernelwarehouse':
    ('https://github.com/OSVAI/KernelWarehouse#results-and-models',
     'kernelwarehouse_to_mmkr.py'),
}


def test_every_released_network_has_a_metafile_row_naming_its_converter():
    """The metafile row of every convertible network names the authors'
    download page and the command that converts their file; no other row
    claims converted weights."""
    import yaml
    configs = {p.values[0].config for p in RELEASED}
    rows = {}
    for folder in CONVERTERS:
        with open(osp.join(ROOT, 'configs', folder, 'metafile.yml')) as f:
            rows.update({m['Config']: m for m in yaml.safe_load(f)['Models']})
    converted = {
        c
        for c, m in rows.items() if 'Converted weights' in m['Metadata']
    }
    assert converted == configs
    for config in configs:
        page, tool = CONVERTERS[config.split('/')[1]]
        assert rows[config]['Metadata']['Converted weights'] == dict(
            Source=page,
            Command=f'python tools/model_converters/{tool} SRC DST'), config
