"""AttentionStatsHook in a real Runner: the scalars it writes through the
visualizer, per stage, and the kernel entropy against hand computations."""
import glob
import json
import math
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS
from mmpretrain.structures import DataSample

import mmkr  # noqa: F401
from mmkr.analysis.attention import kernel_entropy, stage_of
from mmkr.models.backbones import KRBackbone

STAGES = ('layer1', 'layer2', 'layer3', 'layer4')
# 8 images, batch 2: 4 iterations; the hook logs after iterations 2 and 4
IMAGES, BATCH, INTERVAL = 8, 2, 2


def images():
    gen = torch.Generator().manual_seed(0)
    return [
        dict(inputs=torch.randint(0, 255, (3, 32, 32), generator=gen,
                                  dtype=torch.uint8),
             data_samples=DataSample().set_gt_label(i % 2))
        for i in range(IMAGES)
    ]


def train(tmp_path, custom_hooks, with_kr=True, **backbone):
    """A Runner that trains a KR-ResNet-18 of 8 base channels (KR on or off,
    ``backbone`` options of KRBackbone) for one epoch with ``custom_hooks``
    and a LocalVisBackend."""
    head = (dict(type='KRLinearClsHead', num_classes=2, in_channels=64,
                 kr_dims=4) if with_kr else
            dict(type='LinearClsHead', num_classes=2, in_channels=64))
    runner = Runner(
        model=dict(
            type='ImageClassifier',
            data_preprocessor=dict(type='ClsDataPreprocessor',
                                   num_classes=2),
            backbone=dict(type='KRBackbone',
                          backbone=dict(type='ResNet', depth=18,
                                        base_channels=8),
                          kernel_num=4, kr_dims=4,
                          with_kr=with_kr, return_kr=with_kr,
                          probe_size=(32, 32), **backbone),
            neck=None if with_kr else dict(type='GlobalAveragePooling'),
            head=head),
        work_dir=str(tmp_path),
        experiment_name=f'attention_stats_{tmp_path.name}',
        train_dataloader=dict(
            dataset=images(), batch_size=BATCH, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=custom_hooks,
        default_hooks=dict(checkpoint=None, logger=None),
        visualizer=dict(type='Visualizer',
                        vis_backends=[dict(type='LocalVisBackend')]),
        default_scope='mmpretrain')
    return runner


def logged(runner) -> list:
    (path, ) = glob.glob(
        osp.join(runner.work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_stages_are_named_by_the_backbone_structure():
    resnet = torch.nn.Module()
    resnet.layer1 = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1))
    resnet.layers = torch.nn.ModuleList([torch.nn.Linear(1, 1)] * 4)
    assert stage_of(resnet, 'layer1.0.conv1') == 'layer1'
    assert stage_of(resnet, 'layers.3.attn.qkv') == 'layers.3'
    assert stage_of(resnet, 'conv2') == 'conv2'


def test_entropy_of_uniform_one_hot_and_sigmoid_attentions():
    assert kernel_entropy(torch.full((3, 4), 0.25)).tolist() == [1., 1., 1.]
    assert kernel_entropy(torch.eye(4)).tolist() == [0.] * 4
    # CondConv's sigmoid weights are normalised to sum 1 first
    torch.testing.assert_close(
        kernel_entropy(torch.tensor([[0.8, 0.8, 0.2, 0.2]])),
        torch.tensor([-(2 * 0.4 * math.log(0.4) + 2 * 0.1 * math.log(0.1))
                      / math.log(4)]))


def test_hook_logs_every_statistic_per_stage(tmp_path):
    """ODConv's four heads with KR: every statistic for every stage at
    iterations 2 and 4, T as KRTemperatureHook set it, and the generators
    left without hooks between the logged iterations."""
    runner = train(tmp_path, [
        dict(type='KRTemperatureHook', anneal_epochs=1),
        dict(type='AttentionStatsHook', interval=INTERVAL)
    ])
    generators = [
        layer.generator
        for layer in runner.model.backbone.dynamic_layers.values()
    ]
    hooks_seen = []
    generators[0].register_forward_pre_hook(
        lambda module, args: hooks_seen.append(len(module._forward_hooks)))
    runner.train()

    records = logged(runner)
    assert [r['step'] for r in records] == [2, 4]
    stats = ('kernel_entropy', 'channel', 'filter', 'spatial', 'kr_norm',
             'temperature')
    expected = {f'attention/{s}/{stage}' for s in stats for stage in STAGES}
    for record in records:
        assert set(record) - {'step'} == expected
        for stage in STAGES:
            assert 0 <= record[f'attention/kernel_entropy/{stage}'] <= 1
            for head in ('channel', 'filter', 'spatial'):
                assert 0 < record[f'attention/{head}/{stage}'] < 1
            assert record[f'attention/kr_norm/{stage}'] > 0
            # T of iteration i (from 0) is 30 - 29 * i / 4
            assert record[f'attention/temperature/{stage}'] == \
                pytest.approx(30 - 29 * (record['step'] - 1) / 4)
    # the recorder's hook is there only in iterations 2 and 4
    assert hooks_seen == [0, 1, 0, 1]
    assert all(not g._forward_hooks for g in generators)


LOG4 = math.log(4)
# method -> stage -> (the logits every sample gets there, hand-computed
# entropy); DyConv's logits are log p at T = 1, CondConv's sigmoid(logit)
# weights are normalised to sum 1
KERNEL_LOGITS = {
    'dyconv': {
        'layer1': ([0., 0., 0., 0.], 1.),  # uniform
        'layer2': ([1e4, 0., 0., 0.], 0.),  # one kernel
        # p = (1/2, 1/4, 1/8, 1/8): Σ p log2(1/p) / log2(4)
        'layer3': ([math.log(p) for p in (0.5, 0.25, 0.125, 0.125)],
                   (0.5 + 0.5 + 0.75) / 2),
    },
    'condconv': {
        'layer1': ([0., 0., 0., 0.], 1.),  # all 0.5: uniform
        'layer2': ([1e4, -1e4, -1e4, -1e4], 0.),  # (1, 0, 0, 0)
        # (0.8, 0.8, 0.2, 0.2) -> p = (0.4, 0.4, 0.1, 0.1)
        'layer3': ([LOG4, LOG4, -LOG4, -LOG4],
                   -(0.8 * math.log(0.4) + 0.2 * math.log(0.1)) / LOG4),
    },
}


@pytest.mark.parametrize('method', ['dyconv', 'condconv'])
def test_kernel_entropy_of_constructed_attentions(tmp_path, method):
    """Each stage's generators output constructed logits (DyConv's and
    CondConv's logits are their kernel head alone): the logged entropy is
    the hand computation."""
    runner = train(tmp_path,
                   [dict(type='AttentionStatsHook', interval=INTERVAL)],
                   with_kr=False, method=method)
    backbone = runner.model.backbone
    assert isinstance(backbone, KRBackbone)
    for name, layer in backbone.dynamic_layers.items():
        if hasattr(layer.generator, 'temperature'):
            layer.generator.temperature.fill_(1.)
        stage = stage_of(backbone.backbone, name)
        if stage in KERNEL_LOGITS[method]:
            logits = torch.tensor(KERNEL_LOGITS[method][stage][0])
            layer.generator.register_forward_hook(
                lambda module, args, out, logits=logits: logits.expand(
                    out.size(0), -1).clone())
    runner.train()

    records = logged(runner)
    assert [r['step'] for r in records] == [2, 4]
    for record in records:
        assert 'attention/kr_norm/layer1' not in record  # KR off
        for stage, (_, entropy) in KERNEL_LOGITS[method].items():
            assert record[f'attention/kernel_entropy/{stage}'] == \
                pytest.approx(entropy, abs=1e-6)
        assert 0 < record['attention/kernel_entropy/layer4'] < 1


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match='interval'):
        HOOKS.build(dict(type='AttentionStatsHook', interval=0))
