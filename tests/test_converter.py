"""Static -> KR conversion: the KR model starts as the static model."""
import functools
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401
from mmkr.models.utils import convert_static_to_kr, neutral_factors

STATIC_CONFIGS = {
    'resnet18': 'mmpretrain::resnet/resnet18_8xb32_in1k.py',
    'deit-tiny': 'mmpretrain::deit/deit-tiny_4xb256_in1k.py',
}
IMAGES = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def build(config, **model_options):
    """The model of ``config`` as constructed (``init_weights`` only changes
    how the random start is drawn, and mmpretrain's FFN init fails on the
    bias-free linears inside the KR ViT's dynamic layers)."""
    init_default_scope('mmpretrain')
    cfg = (get_config(config) if '::' in config else Config.fromfile(config))
    if model_options:
        cfg.merge_from_dict(dict(model=model_options))
    return MODELS.build(cfg.model).eval()


@functools.lru_cache()
def static_model(name):
    """An mmpretrain classifier with random weights and BN statistics (the
    zoo's are not reachable here)."""
    torch.manual_seed(0)
    model = build(STATIC_CONFIGS[name])
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    # mmpretrain's ViT head starts at zero, which would make every logit 0
    for param in model.head.parameters():
        param.data.normal_(0, 0.05)
    return model


def converted(static, config, noise_std=0.01):
    torch.manual_seed(1)
    model = build(config)
    for m in model.modules():
        if hasattr(m, 'temperature'):
            m.temperature.fill_(30.)
    random_logits = logits(model, IMAGES)
    state = convert_static_to_kr(static.state_dict(), model, noise_std)
    model.load_state_dict(state, strict=True)
    return model, random_logits


def logits(model, images):
    with torch.no_grad():
        return model(images, mode='tensor')


@pytest.mark.parametrize('name, config', [
    ('resnet18', 'configs/kr/resnet18_kr4.py'),
    ('resnet18', 'configs/odconv/resnet18_odconv4.py'),
    ('deit-tiny', 'configs/kr/vit-tiny_kr4.py'),
])
def test_step0_logits_equal_the_static_model(name, config):
    static = static_model(name)
    model, random_logits = converted(static, config)
    expected = logits(static, IMAGES)
    diff = (logits(model, IMAGES) - expected).abs().max().item()
    print(f'{config}: max |logit difference| at step 0 = {diff:.2e} '
          f'(logits std {expected.std():.2f})')
    assert diff < 1e-4
    # The KR model before conversion is far from it: the test can fail.
    assert (random_logits - expected).abs().max() > 1e-2


def test_candidates_start_from_the_static_kernel():
    static = static_model('resnet18')
    model, _ = converted(static, 'configs/kr/resnet18_kr4.py')
    layer = model.backbone.backbone.layer2[0].conv1
    kernel = static.backbone.layer2[0].conv1.weight
    weight_factor, bias_factor = neutral_factors(layer)
    # channel, filter and spatial sigmoid(0) = 1/2, softmax over K sums to 1
    assert (weight_factor, bias_factor) == (0.125, 1.)
    torch.testing.assert_close(layer.weight.mean(0) * weight_factor, kernel)
    assert not torch.allclose(layer.weight[0], layer.weight[1])
    for head in layer.generator.heads.values():
        assert not head.weight.any() and not head.bias.any()
    assert layer.generator.temperature == 1.
    head = model.head.fc.weight
    torch.testing.assert_close(head[:, :512], static.head.fc.weight)
    assert not head[:, 512:].any()


@pytest.mark.parametrize('noise_std', [0., 0.01])
def test_candidate_noise_breaks_the_symmetry(noise_std):
    """With equal candidates the kernel attention gets no gradient (K
    candidates would train as one); the zero-mean noise fixes that."""
    static = static_model('resnet18')
    model, _ = converted(static, 'configs/kr/resnet18_kr4.py', noise_std)
    model.train()
    loss = model(IMAGES[..., :32, :32], mode='tensor').square().mean()
    loss.backward()
    layer = model.backbone.backbone.layer3[1].conv2
    kernel_grad = layer.generator.heads.kernel.weight.grad.abs().max()
    channel_grad = layer.generator.heads.channel.weight.grad.abs().max()
    assert channel_grad > 0
    if noise_std:
        assert kernel_grad > 1e-3 * channel_grad
    else:
        assert kernel_grad < 1e-6 * channel_grad


def test_other_architecture_is_refused():
    torch.manual_seed(0)
    static = build(STATIC_CONFIGS['resnet18'],
                   backbone=dict(depth=34)).state_dict()
    with pytest.raises(ValueError,
                       match='tensors of the static checkpoint have no place'
                       r" in the KR model .*\['backbone.layer1.2"):
        convert_static_to_kr(static, build('configs/kr/resnet18_kr4.py'))


def test_tool_and_finetune_config(tmp_path):
    static = static_model('resnet18')
    static_path = tmp_path / 'resnet18_static.pth'
    torch.save({'state_dict': static.state_dict(), 'meta': {}}, static_path)
    out = tmp_path / 'resnet18_kr4_from-static.pth'
    command = [
        sys.executable, 'tools/model_converters/static_to_kr.py',
        'configs/kr/resnet18_kr4.py',
        str(static_path),
        str(out)
    ]
    subprocess.run(command, check=True, capture_output=True)
    written = out.read_bytes()

    cfg = Config.fromfile('configs/kr/resnet18_kr4_ft-from-static.py')
    assert cfg.load_from.endswith(out.name)
    assert not any(h.type == 'KRTemperatureHook' for h in cfg.custom_hooks)
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model).eval()
    load_checkpoint(model, str(out), strict=True)
    torch.testing.assert_close(
        logits(model, IMAGES), logits(static, IMAGES), atol=1e-4, rtol=0)

    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode != 0
    assert 'exists; not overwriting it' in again.stderr
    assert out.read_bytes() == written
