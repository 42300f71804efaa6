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


# Kernel attentions a (B, K) of one sample, and their normalised entropy
# (ODConv's and DyConv's softmax; CondConv's sigmoid routing weights are
# normalised to p = a / Σ_k a_k first).
UNIFORM = (0.25, ) * 4
ONE_KERNEL = (1., 0., 0., 0.)
# p = (1/2, 1/4, 1/8, 1/8): Σ p log2(1/p) / log2(4)
SKEWED = (0.5, 0.25, 0.125, 0.125)
# p = (0.4, 0.4, 0.1, 0.1)
PAIRS = (0.8, 0.8, 0.2, 0.2)
ENTROPY = {
    UNIFORM: 1.,
    ONE_KERNEL: 0.,
    SKEWED: (0.5 + 0.5 + 0.75) / 2,
    PAIRS: -(0.8 * math.log(0.4) + 0.2 * math.log(0.1)) / math.log(4),
    (0.5, ) * 4: 1.,
}


def logits_for(generator, attentions: dict) -> torch.Tensor:
    """alpha~ (L,) whose activated heads are ``attentions`` (head -> one
    value per feature head, K values for the kernel head) at the
    generator's current T."""
    parts = []
    for name, size in generator.head_sizes.items():
        if not size:
            continue
        value = torch.tensor(attentions[name], dtype=torch.float64)
        if name == 'kernel' and generator.method != 'condconv':
            parts.append(value.log().clamp(min=-1e4))  # softmax
        else:
            parts.append(value.logit().clamp(-1e4, 1e4).expand(size))
    logits = torch.cat(parts)
    if hasattr(generator, 'temperature'):
        logits = logits * generator.temperature.double()
    return logits


def construct_attentions(backbone: KRBackbone, attentions_of) -> dict:
    """Make every generator of ``backbone`` output the logits of
    ``attentions_of(stage, last, sample)`` (``last``: the layer runs last
    in its stage; ``sample``: 0 or 1, even or odd samples of a batch) in
    place of its own (where it gives None, the layer keeps its own); the
    number of dynamic layers of each stage."""
    names = list(backbone.dynamic_layers)
    stages = [stage_of(backbone.backbone, name) for name in names]
    for i, (name, stage) in enumerate(zip(names, stages)):
        last = i + 1 == len(names) or stages[i + 1] != stage
        if attentions_of(stage, last, 0) is None:
            continue

        def hook(module, args, out, stage=stage, last=last):
            return torch.stack([
                logits_for(module, attentions_of(stage, last, b % 2))
                for b in range(out.size(0))
            ]).to(out.dtype)

        backbone.dynamic_layers[name].generator.register_forward_hook(hook)
    return {stage: stages.count(stage) for stage in stages}


# ODConv's feature heads: the attention of even and odd samples
FEATURE_ATTENTIONS = dict(channel=(0.75, 0.5), filter=(0.25, 0.5),
                          spatial=(0.8, 0.1))


def test_hook_logs_every_statistic_per_stage(tmp_path):
    """ODConv's four heads with KR, their attentions constructed to differ
    between heads, samples and the layers of a stage: every statistic for
    every stage at iterations 2 and 4 is the hand-computed mean over the
    stage's layers of the batch mean, T is as KRTemperatureHook set it, and
    the generators are left without the recorder's hooks between the
    logged iterations."""
    runner = train(tmp_path, [
        dict(type='KRTemperatureHook', anneal_epochs=1),
        dict(type='AttentionStatsHook', interval=INTERVAL)
    ])

    def attentions_of(stage, last, sample):
        # the kernel: uniform for even samples; for odd ones, one kernel
        # in every layer but the stage's last, which mixes them as SKEWED
        kernel = UNIFORM if sample == 0 else SKEWED if last else ONE_KERNEL
        return dict(kernel=kernel, **{
            head: values[sample]
            for head, values in FEATURE_ATTENTIONS.items()
        })

    backbone = runner.model.backbone
    layers = construct_attentions(backbone, attentions_of)
    generators = [
        layer.generator for layer in backbone.dynamic_layers.values()
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
            n = layers[stage]
            hand = dict(
                # n - 1 layers at (1 + 0) / 2, the last at (1 + 0.875) / 2
                kernel_entropy=(1 + ENTROPY[SKEWED] / n) / 2,
                **{
                    head: sum(values) / 2
                    for head, values in FEATURE_ATTENTIONS.items()
                })
            for stat, value in hand.items():
                key = f'attention/{stat}/{stage}'
                assert record[key] == pytest.approx(value, abs=1e-6), (
                    f'step {record["step"]}: {key} = {record[key]}, by '
                    f'hand {value}')
            assert record[f'attention/kr_norm/{stage}'] > 0
            # T of iteration i (from 0) is 30 - 29 * i / 4
            assert record[f'attention/temperature/{stage}'] == \
                pytest.approx(30 - 29 * (record['step'] - 1) / 4)
    # the recorder's hook joins the constructing one in iterations 2 and 4
    # only
    assert hooks_seen == [1, 2, 1, 2]
    assert all(len(g._forward_hooks) == 1 for g in generators)


# method -> stage -> kernel attentions of (even samples, odd samples in
# every layer but the stage's last, odd samples in its last layer)
KERNEL_ATTENTIONS = {
    'dyconv': {
        'layer1': (UNIFORM, ONE_KERNEL, SKEWED),
        'layer2': (ONE_KERNEL, SKEWED, UNIFORM),
        'layer3': (SKEWED, UNIFORM, ONE_KERNEL),
    },
    'condconv': {
        'layer1': ((0.5, ) * 4, ONE_KERNEL, PAIRS),
        'layer2': (ONE_KERNEL, PAIRS, (0.5, ) * 4),
        'layer3': (PAIRS, (0.5, ) * 4, ONE_KERNEL),
    },
}


@pytest.mark.parametrize('method', ['dyconv', 'condconv'])
def test_kernel_entropy_of_constructed_attentions(tmp_path, method):
    """Layers 1 to 3 output constructed kernel attentions (DyConv's and
    CondConv's logits are their kernel head alone) that differ between
    samples and between the stage's last layer and the others: the logged
    entropy is the hand-computed mean over layers of the batch mean."""
    runner = train(tmp_path,
                   [dict(type='AttentionStatsHook', interval=INTERVAL)],
                   with_kr=False, method=method)
    backbone = runner.model.backbone
    assert isinstance(backbone, KRBackbone)
    stages = KERNEL_ATTENTIONS[method]

    def attentions_of(stage, last, sample):
        if stage not in stages:  # layer4 keeps its generators' own
            return None
        even, odd, odd_last = stages[stage]
        return dict(kernel=odd_last if last and sample else
                    odd if sample else even)

    layers = construct_attentions(backbone, attentions_of)
    runner.train()

    records = logged(runner)
    assert [r['step'] for r in records] == [2, 4]
    for record in records:
        assert 'attention/kr_norm/layer1' not in record  # KR off
        for stage, (even, odd, odd_last) in stages.items():
            n = layers[stage]
            hand = (ENTROPY[even] +
                    ((n - 1) * ENTROPY[odd] + ENTROPY[odd_last]) / n) / 2
            key = f'attention/kernel_entropy/{stage}'
            assert record[key] == pytest.approx(hand, abs=1e-6), (
                f'step {record["step"]}: {key} = {record[key]}, by hand '
                f'{hand}')
        assert 0 < record['attention/kernel_entropy/layer4'] < 1


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match='interval'):
        HOOKS.build(dict(type='AttentionStatsHook', interval=0))
