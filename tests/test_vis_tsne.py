"""tools/visualization/vis_tsne.py writes its t-SNE PNGs and silhouettes for
a demo model on real digits (the kernels it reads, each layer's
``sample_kernels``, are tested in test_sample_kernels.py)."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.runner import save_checkpoint
from mmpretrain import get_model
from PIL import Image

import mmkr  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'visualization', 'vis_tsne.py')
DEMO_CONFIG = osp.join(REPO, 'configs', 'demo', 'resnet18_kr4_digits.py')


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
    assert "no dynamic conv or linear 'layer9.conv'" in result.stderr
    assert not (root / 'out_bad').exists()
