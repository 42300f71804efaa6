"""tools/visualization/vis_tsne.py: the kernels it reads are those the layer
applies, and it writes its t-SNE PNGs for a demo model on real digits."""
import importlib.util
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.runner import save_checkpoint
from mmpretrain import get_model
from PIL import Image

import mmkr  # noqa: F401
from mmkr.models.layers import DynamicConv2d, DynamicLinear

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'visualization', 'vis_tsne.py')
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo', 'resnet18_kr4_digits.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('vis_tsne', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('kwargs', [
    dict(in_channels=8, out_channels=6, kernel_size=3, padding=1,
         kernel_num=4),
    dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8,
         kernel_num=1),
    dict(in_channels=8, out_channels=12, kernel_size=3, padding=1, groups=4,
         kernel_num=2, method='dyconv'),
])
def test_effective_kernels_are_the_applied_kernels(kwargs):
    """conv(x_b, W_b) with the tool's per-sample kernel W_b reproduces the
    dynamic conv's output for every sample."""
    tool = load_tool()
    torch.manual_seed(0)
    layer = DynamicConv2d(**kwargs, kr_dims=16).eval()
    x, d = torch.randn(3, 8, 7, 7), torch.randn(3, 16)
    with torch.no_grad():
        out, _ = layer.forward_kr(x, d)
        att, _ = layer.attend(x.mean(dim=(2, 3)), d)
        kernels = tool.effective_kernels(layer, att)
        ref = torch.cat([
            F.conv2d(x[b:b + 1], kernels[b], padding=1,
                     groups=layer.groups) for b in range(3)
        ])
    assert kernels.shape == (3, *layer.weight.shape[1:])
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_effective_kernels_of_a_linear_layer():
    tool = load_tool()
    torch.manual_seed(0)
    layer = DynamicLinear(10, 6, bias=False, kernel_num=4, kr_dims=8).eval()
    tokens, d = torch.randn(2, 5, 10), torch.randn(2, 8)
    with torch.no_grad():
        out, _ = layer.forward_kr(tokens, d)
        att, _ = layer.attend(tokens.mean(dim=1), d)
        kernels = tool.effective_kernels(layer, att)
    torch.testing.assert_close(out, tokens @ kernels.transpose(1, 2),
                               rtol=1e-4, atol=1e-5)


@pytest.fixture(scope='module')
def digits_and_checkpoint(tmp_path_factory):
    """The demo digits (4 per class, 10 classes, 32x32 PNGs in val/) and a
    checkpoint of the demo KR model."""
    root = tmp_path_factory.mktemp('tsne')
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'dataset_converters',
                 'prepare_digits_demo.py'), '--out-dir',
        str(root / 'digits'), '--per-class', '20', '--val-ratio', '0.5'
    ], check=True, cwd=REPO, capture_output=True)
    torch.manual_seed(0)
    model = get_model(DEMO_CONFIG, device='cpu')
    checkpoint = str(root / 'demo.pth')
    save_checkpoint(dict(meta=dict(), state_dict=model.state_dict()),
                    checkpoint)
    return root, checkpoint


def run_tool(checkpoint, data_root, out_dir, *extra):
    return subprocess.run([
        sys.executable, TOOL, DEMO_CONFIG, checkpoint, '--out-dir',
        str(out_dir), '--num-classes', '5', '--per-class', '8',
        '--perplexity', '5', '--cfg-options',
        f'val_dataloader.dataset.data_root={data_root}', *extra
    ], cwd=REPO, capture_output=True, text=True)


def test_writes_pngs_and_scores(digits_and_checkpoint):
    root, checkpoint = digits_and_checkpoint
    out_dir = root / 'out'
    result = run_tool(checkpoint, root / 'digits', out_dir, '--layer',
                      'layer4.1.conv1', '--kernel-dims', '512')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'layer4.1.conv1' in result.stdout
    for name in ('kernels', 'kr', 'features'):
        match = re.search(rf'^{name}\s+(-?\d\.\d+)\s+(-?\d\.\d+)\s+(\S+)$',
                          result.stdout, re.MULTILINE)
        assert match, result.stdout
        assert -1 <= float(match[1]) <= 1 and -1 <= float(match[2]) <= 1
        png = out_dir / f'tsne_{name}.png'
        assert match[3] == str(png)
        with Image.open(png) as image:
            assert image.format == 'PNG' and min(image.size) > 100

    again = run_tool(checkpoint, root / 'digits', out_dir)
    assert again.returncode != 0
    assert 'refusing to overwrite' in again.stderr


def test_unknown_layer_is_refused(digits_and_checkpoint):
    root, checkpoint = digits_and_checkpoint
    result = run_tool(checkpoint, root / 'digits', root / 'out_bad',
                      '--layer', 'layer9.conv')
    assert result.returncode != 0
    assert "no dynamic layer 'layer9.conv'" in result.stderr
    assert not (root / 'out_bad').exists()
