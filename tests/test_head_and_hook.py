"""KRLinearClsHead and KRTemperatureHook, the latter in a real Runner."""
import pytest
import torch
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS, MODELS
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset

import mmkr  # noqa: F401
from mmkr.models.layers import KernelGenerator


def test_head_uses_feature_and_kr():
    head = MODELS.build(
        dict(type='KRLinearClsHead', num_classes=5, in_channels=8,
             kr_dims=4))
    feat, kr = torch.randn(2, 8, 3, 3), torch.randn(2, 4)
    logits = head((feat, kr))
    expected = head.fc(torch.cat([feat.mean(dim=(2, 3)), kr], dim=1))
    torch.testing.assert_close(logits, expected)
    # a ViT's class token is used as it is
    token = torch.randn(2, 8)
    torch.testing.assert_close(head((token, kr)),
                               head.fc(torch.cat([token, kr], dim=1)))
    with pytest.raises(ValueError, match='return_kr=True'):
        head((feat, ))
    with pytest.raises(ValueError, match='d_L of 4'):
        head((feat, torch.randn(2, 3)))


def test_classifier_trains_both_branches():
    model = MODELS.build(
        dict(type='ImageClassifier',
             backbone=dict(type='KRBackbone',
                           backbone=dict(type='ResNet', depth=18,
                                         base_channels=8),
                           kr_dims=4, return_kr=True),
             head=dict(type='KRLinearClsHead', num_classes=3,
                       in_channels=64, kr_dims=4)))
    samples = [DataSample().set_gt_label(i) for i in range(2)]
    losses = model(torch.randn(2, 3, 32, 32), samples, mode='loss')
    losses['loss'].backward()
    assert model.head.fc.weight.grad[:, 64:].abs().sum() > 0
    assert model.backbone.encoder.proj.weight.grad.abs().sum() > 0


def test_temperature_schedule():
    hook = HOOKS.build(dict(type='KRTemperatureHook', anneal_epochs=2))
    schedule = hook.schedule('odconv')
    assert schedule.value(0, 10) == 30.
    assert schedule.value(10, 10) == pytest.approx(15.5)
    assert schedule.value(20, 10) == 1.
    assert schedule.value(55, 10) == 1.
    with pytest.raises(ValueError, match='anneal_epochs'):
        HOOKS.build(dict(type='KRTemperatureHook', anneal_epochs=0))


class RandomImages(Dataset):
    """``num`` random ``size`` x ``size`` images of two classes."""
    metainfo = dict(classes=('a', 'b'))

    def __init__(self, num: int = 8, size: int = 32):
        self.num, self.size = num, size

    def __len__(self):
        return self.num

    def __getitem__(self, index):
        gen = torch.Generator().manual_seed(index)
        return dict(
            inputs=torch.randint(0, 255, (3, self.size, self.size),
                                 generator=gen, dtype=torch.uint8),
            data_samples=DataSample().set_gt_label(index % 2))


def temperature_runner(tmp_path, method: str, max_epochs: int):
    options = dict(kernel_num=2) if method in ('odconv', 'dyconv',
                                               'condconv') else {}
    return Runner(
        model=dict(
            type='ImageClassifier',
            data_preprocessor=dict(type='ClsDataPreprocessor',
                                   num_classes=2),
            backbone=dict(type='KRBackbone',
                          backbone=dict(type='ResNet', depth=18,
                                        base_channels=8),
                          method=method, kr_dims=4, return_kr=True,
                          **options),
            head=dict(type='KRLinearClsHead', num_classes=2, in_channels=64,
                      kr_dims=4)),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=RandomImages(), batch_size=2, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[dict(type='KRTemperatureHook', anneal_epochs=1.5)],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope='mmpretrain')


@pytest.mark.parametrize('method', ['odconv', 'dyconv'])
def test_hook_anneals_across_epochs_in_a_runner(tmp_path, method):
    """4 iterations per epoch, annealing over 1.5 epochs, 3 epochs: the
    global iteration i (not the index within its epoch) runs every
    generator at T = 30 - 29 * i / 6 until i = 6, then at 1."""
    runner = temperature_runner(tmp_path, method, max_epochs=3)
    generators = {
        name: m
        for name, m in runner.model.named_modules()
        if isinstance(m, KernelGenerator)
    }
    assert generators and all(
        g.method == method for g in generators.values())
    seen = {name: [] for name in generators}
    for name, generator in generators.items():
        generator.register_forward_pre_hook(
            lambda module, args, name=name: seen[name].append(
                module.temperature.item()))
    runner.train()
    expected = [max(30 - 29 * i / 6, 1.) for i in range(12)]
    for name, temperatures in seen.items():
        assert temperatures == pytest.approx(expected), (
            f'{name} ran at T = {temperatures}, expected {expected}')


@pytest.mark.parametrize('method', ['condconv', 'dcd', 'weightnet'])
def test_hook_refuses_methods_without_temperature(tmp_path, method):
    runner = temperature_runner(tmp_path, method, max_epochs=1)
    with pytest.raises(ValueError, match='no dynamic layer with a '
                       'temperature'):
        runner.train()
