"""The picture tools on a demo checkpoint: ``tools/train.py`` trains the
demo config (AttentionStatsHook and TensorBoard on, as configured) for one
short epoch on real digits; ``plot_attention_stats.py``,
``vis_attention.py`` and ``vis_cam.py`` then write PNGs of the sizes they
promise. Their numbers (per-class mean attention and entropy) are checked
against hand calculations on constructed attentions."""
import glob
import importlib.util
import json
import math
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from PIL import Image
from torch.utils.data import DataLoader

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'demo', 'resnet18_kr4_digits.py')
TOOLS = osp.join(REPO, 'tools', 'visualization')
# the demo's KR-ResNet-18: 19 dynamic layers (all convs but the stem) of
# K = 4 kernels, in 4 stages
LAYERS, KERNELS, CLASSES = 19, 4, 10


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def succeeds(*args: str) -> str:
    result = run(*args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[
        -3000:]
    return result.stdout


def load_tool(name: str):
    """tools/visualization/``name``.py as a module."""
    spec = importlib.util.spec_from_file_location(
        name, osp.join(TOOLS, f'{name}.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def png_size(path) -> tuple:
    with Image.open(path) as image:
        assert image.format == 'PNG'
        return image.size


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    """(digits root, work dir, checkpoint) of one epoch of the demo config:
    4 digits per class, half in val/, 5 iterations of 4 images, the
    attention statistics logged every iteration."""
    root = tmp_path_factory.mktemp('visualization')
    digits, work_dir = root / 'digits', root / 'work'
    succeeds('tools/dataset_converters/prepare_digits_demo.py', '--out-dir',
             str(digits), '--per-class', '4', '--val-ratio', '0.5')
    succeeds('tools/train.py', CONFIG, '--work-dir', str(work_dir),
             '--cfg-options', *data_root(digits),
             'train_dataloader.batch_size=4', 'train_cfg.max_epochs=1',
             'custom_hooks.1.interval=1')
    return digits, work_dir, str(work_dir / 'epoch_1.pth')


def data_root(digits) -> list:
    return [
        f'{split}_dataloader.dataset.data_root={digits}'
        for split in ('train', 'val', 'test')
    ]


def test_demo_run_logs_attention_statistics_to_tensorboard(demo):
    _, work_dir, _ = demo
    (run_dir, ) = glob.glob(str(work_dir / '*' / 'vis_data'))
    assert glob.glob(osp.join(run_dir, 'events.out.tfevents.*'))
    with open(osp.join(run_dir, 'scalars.json')) as f:
        # the validation metrics are there too
        records = [
            r for r in map(json.loads, f)
            if 'attention/kernel_entropy/layer3' in r
        ]
    assert [r['step'] for r in records] == [1, 2, 3, 4, 5]
    assert 0 <= records[-1]['attention/kernel_entropy/layer3'] <= 1


def test_plot_attention_stats(demo, tmp_path):
    _, work_dir, _ = demo
    out = tmp_path / 'stats.png'
    log = succeeds(osp.join(TOOLS, 'plot_attention_stats.py'),
                   str(work_dir), '--out', str(out))
    assert 'scalars.json' in log
    # 6 statistics: 2 rows of 3 panels of 4 x 3 inches at 100 dpi
    assert png_size(out) == (1200, 600)

    result = run(osp.join(TOOLS, 'plot_attention_stats.py'), str(tmp_path),
                 '--out', str(tmp_path / 'none.png'))
    assert result.returncode != 0
    assert 'AttentionStatsHook' in result.stderr


def test_vis_attention(demo, tmp_path):
    digits, _, checkpoint = demo
    out = tmp_path / 'kernel_attention.png'
    log = succeeds(osp.join(TOOLS, 'vis_attention.py'), CONFIG, checkpoint,
                   '--out', str(out), '--cfg-options', *data_root(digits))
    rows = [line.split() for line in log.splitlines()
            if line.startswith('layer')][1:]
    assert len(rows) == LAYERS and rows[0][0] == 'layer1.0.conv1'
    for _, kernels, entropy, spread in rows:
        assert int(kernels) == KERNELS and 0 <= float(entropy) <= 1
        assert 0 <= float(spread) <= 1

    tool = load_tool('vis_attention')
    width, height = tool.figure_size(LAYERS * KERNELS, CLASSES)
    assert png_size(out) == (round(width * tool.DPI), round(height * tool.DPI))


# labels of the samples, in loader order: class 1 most often, class 3
# never; batches of 3, the last one short
LABELS = [0, 1, 1, 2, 1, 0, 1]


@pytest.mark.parametrize('method', ['dyconv', 'condconv'])
def test_class_means_and_entropy_by_hand(method):
    """vis_attention.py's numbers: every generator outputs its own random
    logits per sample; the per-class mean p = a / Σ_k a_k and the mean
    normalised entropy over all samples equal a sample-by-sample hand
    calculation, and a class without samples has p = 0."""
    tool = load_tool('vis_attention')
    model = MODELS.build(
        dict(type='ImageClassifier',
             data_preprocessor=dict(type='ClsDataPreprocessor',
                                    num_classes=4),
             backbone=dict(type='KRBackbone',
                           backbone=dict(type='ResNet', depth=18,
                                         base_channels=8),
                           method=method, kernel_num=4, with_kr=False),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=4,
                       in_channels=64))).eval()
    layers = dict(model.backbone.dynamic_layers)
    gen = torch.Generator().manual_seed(0)
    logits = {
        name: 3 * torch.randn(len(LABELS), 4, generator=gen)
        for name in layers
    }
    for name, layer in layers.items():
        calls = []

        def hook(module, args, out, name=name, calls=calls):
            start = 3 * len(calls)
            calls.append(out.size(0))
            return logits[name][start:start + out.size(0)].to(out.dtype)

        layer.generator.register_forward_hook(hook)
    samples = [
        dict(inputs=torch.randint(0, 255, (3, 16, 16), generator=gen,
                                  dtype=torch.uint8),
             data_samples=DataSample().set_gt_label(label))
        for label in LABELS
    ]
    loader = DataLoader(samples, batch_size=3, collate_fn=pseudo_collate)

    means, entropy, counts = tool.class_means(model, loader, layers, 4)

    assert counts.tolist() == [LABELS.count(c) for c in range(4)]
    for name in layers:
        p = []
        for row in logits[name].tolist():
            if method == 'dyconv':  # softmax at T = 1
                a = [math.exp(v) for v in row]
            else:  # CondConv's sigmoid routing weights
                a = [1 / (1 + math.exp(-v)) for v in row]
            p.append([v / sum(a) for v in a])
        for c in range(4):
            mine = [q for q, label in zip(p, LABELS) if label == c]
            hand = ([sum(col) / len(mine) for col in zip(*mine)]
                    if mine else [0.] * 4)
            assert means[name][c].tolist() == pytest.approx(
                hand, abs=1e-6), (
                    f'{name}: mean p of class {c} is '
                    f'{means[name][c].tolist()}, by hand {hand}')
        hand = sum(-sum(v * math.log(v) for v in q) / math.log(4)
                   for q in p) / len(p)
        assert entropy[name] == pytest.approx(hand, abs=1e-6), (
            f'{name}: mean entropy {entropy[name]}, by hand {hand}')


def scaled(cam: torch.Tensor) -> torch.Tensor:
    """``cam`` shifted to min 0 and divided by its max, as grad-cam does."""
    cam = cam - cam.min()
    return cam / (cam.max() + 1e-7)


def test_grad_cam_by_hand():
    """vis_cam.py's CAM of a stage whose output only global pooling and the
    linear classifier follow, so that its Grad-CAM is known: ReLU(Σ_c w_tc
    A_c / (H W)) for class t, scaled to [0, 1], resized bilinearly to the
    image and scaled again; each image explained for its own class. The
    classifier's rows are set so that the maps stand well above rounding
    (a fresh model's are near 0, where scaling to [0, 1] magnifies
    float32's rounding): all positive for class 2, of both signs for
    class 0."""
    tool = load_tool('vis_cam')
    model = MODELS.build(
        dict(type='ImageClassifier',
             backbone=dict(type='KRBackbone',
                           backbone=dict(type='ResNet', depth=18,
                                         base_channels=8,
                                         strides=(1, 1, 1, 1)),
                           kernel_num=4, kr_dims=4, probe_size=(32, 32)),
             neck=dict(type='GlobalAveragePooling'),
             head=dict(type='LinearClsHead', num_classes=3,
                       in_channels=64))).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        weight = model.head.fc.weight
        weight[2] = torch.rand(64, generator=gen) + 0.5
        weight[0] = torch.randn(64, generator=gen) + 0.5
    stage = model.backbone.backbone.layer4
    outputs = []
    stage.register_forward_hook(lambda m, args, out: outputs.append(out))
    inputs = torch.randn(2, 3, 32, 32, generator=gen)
    categories = [2, 0]

    (cams, ) = tool.class_activation_maps(model, [stage], inputs,
                                          categories)

    features = outputs[0].detach().double()  # (2, 64, 8, 8)
    weight = model.head.fc.weight.detach().double()
    for i, category in enumerate(categories):
        hand = torch.relu(torch.einsum('c,chw->hw', weight[category],
                                       features[i]) / 64)
        hand = scaled(torch.nn.functional.interpolate(
            scaled(hand)[None, None], size=(32, 32), mode='bilinear')[0, 0])
        torch.testing.assert_close(
            torch.from_numpy(cams[i]).double(), hand, rtol=0, atol=1e-4,
            msg=lambda detail, i=i: f'CAM of image {i} for class '
            f'{categories[i]} differs from the hand calculation: {detail}')


def test_vis_cam(demo, tmp_path):
    digits, _, checkpoint = demo
    images = [
        sorted(glob.glob(str(digits / 'val' / str(d) / '*.png')))[0]
        for d in range(4)
    ]
    out = tmp_path / 'cam.png'
    log = succeeds(osp.join(TOOLS, 'vis_cam.py'), CONFIG, checkpoint,
                   *images, '--out', str(out), '--target-layers',
                   'layer1.1.conv2', 'layer2', '--size', '32')
    assert log.count('predicted') == 4
    # a column per image; rows: the input and 2 target layers
    assert png_size(out) == (4 * 32, 3 * 32)

    # default: the last dynamic layer of each of the 4 stages
    out = tmp_path / 'default.png'
    log = succeeds(osp.join(TOOLS, 'vis_cam.py'), CONFIG, checkpoint,
                   images[0], '--out', str(out), '--size', '16')
    assert 'layer4.1.conv2' in log
    assert png_size(out) == (16, 5 * 16)

    result = run(osp.join(TOOLS, 'vis_cam.py'), CONFIG, checkpoint,
                 images[0], '--out', str(tmp_path / 'bad.png'),
                 '--target-layers', 'layer9')
    assert result.returncode != 0
    assert "no layer 'layer9'" in result.stderr
