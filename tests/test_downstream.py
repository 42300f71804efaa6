"""KR backbones in MMDetection and MMSegmentation: the wrapper honours
out_indices, frozen_stages, norm_eval and with_cp; the downstream configs
build and train one step on tiny generated COCO / ADE20K datasets."""
import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401
from mmkr.testing import downstream

CONFIGS = {
    'retinanet': 'configs/downstream/retinanet_kr-resnet18-4x_fpn_1x_coco.py',
    'mask-rcnn': 'configs/downstream/mask-rcnn_kr-resnet18-4x_fpn_1x_coco.py',
    'upernet': 'configs/downstream/'
    'upernet_kr-resnet18-4x_4xb4-160k_ade20k-512x512.py',
    'mask-rcnn-convnext': 'configs/downstream/'
    'mask-rcnn_kr-convnext-tiny_fpn_1x_coco.py',
    'upernet-swin': 'configs/downstream/'
    'upernet_kr-swin-tiny_4xb4-160k_ade20k-512x512.py',
}
# ODConv's own detection configs in MMDetection 3.x and the same with KR.
DETECTION_CONFIGS = {
    f'{det}-{method}-{net}': f'configs/downstream/{det}-rcnn_{method}-'
    f'{net}_fpn_1x_coco.py'
    for det in ('faster', 'mask') for method in ('odconv4', 'kr4')
    for net in ('resnet50', 'mobilenet-v2')
}
# The one of them whose training step runs in CI; the others are slow.
DETECTION_IN_CI = 'faster-kr4-mobilenet-v2'
ALL_CONFIGS = {**CONFIGS, **DETECTION_CONFIGS}
# The classifier whose checkpoint each downstream backbone starts from.
CLASSIFIERS = {
    'retinanet': 'configs/kr/resnet18_kr4.py',
    'mask-rcnn': 'configs/kr/resnet18_kr4.py',
    'upernet': 'configs/kr/resnet18_kr4.py',
    'mask-rcnn-convnext': 'configs/kr/convnext-tiny_kr1.py',
    'upernet-swin': 'configs/kr/swin-tiny_kr1.py',
    **{
        name: f'configs/{method[:-1]}/{net}_{method}.py'
        for name in DETECTION_CONFIGS
        for method, net in [name.split('-', 2)[1:]]
    },
}


def _missing_downstream():
    try:
        import mmdet  # noqa: F401
        import mmseg  # noqa: F401
    except ImportError as error:
        return (f'MMDetection / MMSegmentation not installed ({error}): '
                'tools/setup_env.sh installs them with a full mmcv, see '
                'docs/get_started.md.')
    try:
        import mmcv._ext  # noqa: F401
    except ImportError as error:
        return ('MMDetection and MMSegmentation need the compiled ops of the '
                f'full mmcv (mmcv._ext: {error}); mmcv-lite has none. '
                'Install the full mmcv 2.1.0 (mim install "mmcv==2.1.0", or '
                'a wheel of your own with MMKR_MMCV_WHEEL=PATH bash '
                'tools/setup_env.sh): docs/get_started.md.')
    return None


needs_downstream = pytest.mark.skipif(
    _missing_downstream() is not None, reason=str(_missing_downstream()))


def backbone(**options):
    resnet = dict(type='ResNet', depth=18, out_indices=(0, 1, 2, 3))
    resnet.update(options.pop('resnet', {}))
    return MODELS.build(
        dict(type='KRBackbone', backbone=resnet, kernel_num=2, kr_dims=16,
             **options))


@pytest.mark.parametrize('out_indices', [(0, 1, 2, 3), (1, 3), (2, )])
def test_outputs_follow_out_indices(out_indices):
    model = backbone(resnet=dict(out_indices=out_indices))
    outs = model(torch.randn(2, 3, 64, 64))
    channels = (64, 128, 256, 512)
    assert [tuple(o.shape) for o in outs] == [
        (2, channels[i], 16 // 2**i, 16 // 2**i) for i in out_indices
    ]


def stage_modules(model, frozen_stages):
    resnet = model.backbone
    return [resnet.conv1, resnet.bn1] + [
        getattr(resnet, f'layer{i}') for i in range(1, frozen_stages + 1)
    ]


def test_frozen_stages_freeze_their_kernel_generators():
    model = backbone(resnet=dict(frozen_stages=2))
    model.train()
    frozen = stage_modules(model, 2) + [model.encoder]
    for module in frozen:
        assert not any(p.requires_grad for p in module.parameters())
    # (mmpretrain's ResNet leaves the static stem conv's mode alone)
    for module in frozen[1:]:
        assert not any(m.training for m in module.modules())
    generator = model.backbone.layer2[1].conv2.generator
    assert isinstance(generator.heads['kernel'], nn.Linear)
    assert not generator.training

    sum(o.mean() for o in model(torch.randn(2, 3, 64, 64))).backward()
    frozen_params = {id(p) for m in frozen for p in m.parameters()}
    for name, param in model.named_parameters():
        assert (param.grad is None) == (id(param) in frozen_params), name
    assert model.backbone.layer3.training


def test_unfrozen_first_stage_keeps_d0_trainable():
    model = backbone(resnet=dict(frozen_stages=0))
    model.train()
    assert model.encoder.training
    assert all(p.requires_grad for p in model.encoder.parameters())
    assert not model.backbone.bn1.training
    assert model.backbone.layer1[0].conv1.fusion.training


def test_norm_eval_covers_the_generators_batch_norms():
    model = backbone(resnet=dict(norm_eval=True), attention_norm='bn')
    model.train()
    fusion_norms = [
        layer.fusion.norm for layer in model.dynamic_layers.values()
    ]
    assert all(isinstance(n, nn.BatchNorm1d) for n in fusion_norms)
    norms = [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm.
                                                 _BatchNorm)
    ]
    assert not any(n.training for n in norms)
    before = [n.running_mean.clone() for n in norms]
    model(torch.randn(2, 3, 64, 64))
    for norm, mean in zip(norms, before):
        torch.testing.assert_close(norm.running_mean, mean)
    assert model.backbone.layer1.training


def test_with_cp_gives_the_same_gradients():
    """with_cp re-runs each block in backward with the d it saw in forward;
    outputs and every gradient equal those without checkpointing."""
    torch.manual_seed(0)
    plain = backbone()
    torch.manual_seed(1)
    checkpointed = backbone(resnet=dict(with_cp=True))
    checkpointed.load_state_dict(plain.state_dict())
    assert checkpointed.checkpointed_blocks == [
        f'layer{s}.{b}' for s in range(1, 5) for b in range(2)
    ]

    layer = checkpointed.backbone.layer3[0].conv2
    calls = []
    layer.register_forward_hook(lambda *args: calls.append(1))
    img = torch.randn(2, 3, 64, 64)
    results = []
    for model in (plain, checkpointed):
        model.train()
        outs = model(img)
        sum((o * torch.linspace(-1, 1, o.numel()).view_as(o)).sum()
            for o in outs).backward()
        results.append((outs, {
            n: p.grad
            for n, p in model.named_parameters()
        }))
    assert len(calls) == 2  # forward, and recomputation in backward
    (outs_a, grads_a), (outs_b, grads_b) = results
    for a, b in zip(outs_a, outs_b):
        torch.testing.assert_close(a, b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], msg=name)


# ---------------------------------------------------- MMDet / MMSeg configs


def load_config(name):
    return downstream.load_config(ALL_CONFIGS[name])


def downstream_registry(cfg):
    if cfg.default_scope == 'mmdet':
        from mmdet.registry import MODELS as DOWNSTREAM
    else:
        from mmseg.registry import MODELS as DOWNSTREAM
    return DOWNSTREAM


@needs_downstream
@pytest.mark.parametrize('name', list(ALL_CONFIGS))
def test_config_backbone_builds_through_the_registry(name):
    cfg = load_config(name)
    backbone_cfg = cfg.model.backbone
    assert backbone_cfg.init_cfg.prefix == 'backbone.'
    model = downstream_registry(cfg).build(backbone_cfg)
    assert type(model).__name__ == 'KRBackbone'
    outs = model(torch.randn(1, 3, 64, 64))
    neck = cfg.model.get('neck') or cfg.model.decode_head
    assert [o.shape[1] for o in outs] == neck.in_channels


@pytest.fixture(scope='module')
def kr_classifier_checkpoints(tmp_path_factory):
    """``checkpoint(config)``: a KR ImageNet classifier's checkpoint, as a
    zoo would hold it (random weights: none are released), made once."""
    made = {}

    def checkpoint(config):
        if config not in made:
            init_default_scope('mmpretrain')
            torch.manual_seed(0)
            state = MODELS.build(Config.fromfile(config).model).state_dict()
            path = tmp_path_factory.mktemp('zoo') / 'classifier.pth'
            torch.save({'meta': {}, 'state_dict': state}, path)
            made[config] = str(path), state
        return made[config]

    return checkpoint


@needs_downstream
@pytest.mark.parametrize('name', [
    *CONFIGS, *(name if name == DETECTION_IN_CI else pytest.param(
        name, marks=pytest.mark.slow) for name in DETECTION_CONFIGS)
])
def test_one_training_step(name, tmp_path, kr_classifier_checkpoints):
    from mmengine.runner import Runner
    checkpoint, classifier_state = kr_classifier_checkpoints(
        CLASSIFIERS[name])
    cfg = downstream.tiny_run_config(ALL_CONFIGS[name], tmp_path, checkpoint)
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()

    loss = runner.message_hub.get_scalar('train/loss').current()
    assert np.isfinite(loss) and loss > 0
    if name.startswith('mask'):
        # the masks reach a mask head: a Mask R-CNN, not a Faster R-CNN
        loss_mask = runner.message_hub.get_scalar('train/loss_mask')
        assert np.isfinite(loss_mask.current()) and loss_mask.current() > 0
    model = runner.model.backbone
    if CLASSIFIERS[name] != 'configs/kr/resnet18_kr4.py':
        # every dynamic layer starts from the classifier's weights (one step
        # of the warm-up learning rate moves them by far less than 1e-3)
        trained = model.state_dict()
        for layer in model.dynamic_names:
            key = f'backbone.{layer}.weight'
            torch.testing.assert_close(
                trained[key], classifier_state['backbone.' + key], rtol=0,
                atol=1e-3, msg=key)
        return
    frozen = cfg.model.backbone.backbone.frozen_stages
    trained = model.state_dict()
    for key in ('backbone.conv1.weight', 'backbone.layer1.0.conv1.weight',
                'encoder.proj.weight',
                'backbone.layer1.1.conv2.generator.heads.kernel.weight'):
        # Loaded through init_cfg with prefix='backbone.'; a frozen stage
        # (and d_0, which feeds it) stays as loaded.
        same = torch.equal(trained[key], classifier_state['backbone.' + key])
        assert same == (frozen >= 1 or key == 'backbone.conv1.weight'
                        and frozen >= 0), key
    assert not torch.equal(
        trained['backbone.layer4.1.conv2.weight'],
        classifier_state['backbone.backbone.layer4.1.conv2.weight'])
