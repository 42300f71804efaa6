"""Which kernels each class uses: the mean kernel attention per class and
layer of a dynamic model (KR, ODConv, DyConv, CondConv), as a heatmap.

For every dynamic layer with K >= 2 candidate kernels, the kernel attention
p (B, K) of each sample (a / Σ_k a_k, so that CondConv's sigmoid routing is
a distribution too) is averaged over the samples of each class of the
config's val (or test) split. The PNG shows the matrix classes x (layer,
kernel), layers in the order in which they run::

    python tools/visualization/vis_attention.py CONFIG CHECKPOINT \
        --out kernel_attention.png

The tool also prints, per layer, the mean normalised entropy of the
samples' kernel attentions (1: the K kernels mixed uniformly, 0: one
kernel) and the class spread: the largest difference between two classes'
mean attention to one kernel. ``--cfg-options
val_dataloader.dataset.indices=1000`` reads only the first 1000 samples.
"""
import argparse
import os
import os.path as osp
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar
from mmpretrain import get_model

import mmkr  # noqa: F401  (registers mmkr's modules)
from mmkr.analysis.attention import (AttentionRecorder,
                                     dynamic_layers_by_stage,
                                     kernel_distribution, kernel_entropy)

DPI = 100


def parse_args():
    parser = argparse.ArgumentParser(
        description='Mean kernel attention per class and layer as a heatmap')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='the PNG to write')
    parser.add_argument(
        '--split', choices=['val', 'test'], default='val',
        help='which dataloader of the config gives the samples')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, e.g. '
        'val_dataloader.dataset.data_root=data/digits')
    return parser.parse_args()


def class_means(model, loader, layers: dict, num_classes: int) -> tuple:
    """Per layer with a kernel attention: the mean p per class (C, K) and
    the mean normalised entropy; the number of samples per class (C,)."""
    recorder = AttentionRecorder(layers)
    sums, entropy = {}, defaultdict(float)
    counts = torch.zeros(num_classes)
    progress = ProgressBar(len(loader.dataset))
    try:
        with torch.no_grad():
            for batch in loader:
                data = model.data_preprocessor(batch, False)
                model(data['inputs'], mode='tensor')
                labels = torch.cat(
                    [s.gt_label for s in data['data_samples']]).cpu()
                onehot = F.one_hot(labels, num_classes).float()
                counts += onehot.sum(dim=0)
                for name, att in recorder.attentions().items():
                    kernel = getattr(att, 'kernel', None)
                    if kernel is None:
                        continue
                    p = kernel_distribution(kernel).cpu()
                    sums[name] = sums.get(name, 0) + onehot.T @ p
                    entropy[name] += kernel_entropy(kernel).sum().item()
                recorder.clear()
                progress.update(len(labels))
    finally:
        recorder.remove()
    print()
    total = counts.sum().item()
    means = {
        name: (total_p / counts.clamp(min=1)[:, None]).numpy()
        for name, total_p in sums.items()
    }
    return means, {n: e / total for n, e in entropy.items()}, counts


def figure_size(columns: int, rows: int) -> tuple:
    """Inches of the heatmap figure for ``columns`` (layer, kernel) pairs
    and ``rows`` classes; the PNG has DPI pixels per inch."""
    return max(6., 0.12 * columns + 2.5), max(3., 0.3 * rows + 2.)


def plot(means: dict, class_names: list, title: str, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = list(means)
    kernels = [means[n].shape[1] for n in names]
    matrix = np.concatenate([means[n] for n in names], axis=1)
    fig, ax = plt.subplots(figsize=figure_size(*matrix.shape[::-1]))
    image = ax.imshow(matrix, aspect='auto', interpolation='nearest')
    ends = np.cumsum(kernels)
    for end in ends[:-1]:
        ax.axvline(end - 0.5, color='white', linewidth=1)
    ax.set_xticks(ends - np.asarray(kernels) / 2 - 0.5)
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(class_names)))
    ax.set_yticklabels(class_names, fontsize=7)
    ax.set_xlabel('layer (its K kernels left to right)')
    ax.set_ylabel('class')
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label='mean kernel attention')
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = get_model(cfg, pretrained=args.checkpoint,
                      device=args.device).eval()
    layers = {
        name: layer
        for stage in dynamic_layers_by_stage(model).values()
        for name, layer in stage.items()
    }
    init_default_scope('mmpretrain')
    loader = Runner.build_dataloader(cfg[f'{args.split}_dataloader'])
    class_names = list(loader.dataset.metainfo['classes'])
    means, entropy, counts = class_means(model, loader, layers,
                                         len(class_names))
    if not means:
        raise ValueError('no dynamic layer of this model mixes K >= 2 '
                         'kernels: there is no kernel attention to draw')
    present = counts > 0
    means = {name: m[present.numpy()] for name, m in means.items()}
    class_names = [c for c, keep in zip(class_names, present) if keep]

    print(f'{"layer":<28}{"K":>3}{"entropy":>10}{"class spread":>14}')
    for name, m in means.items():
        spread = (m.max(axis=0) - m.min(axis=0)).max()
        print(f'{name:<28}{m.shape[1]:>3}{entropy[name]:>10.3f}'
              f'{spread:>14.3f}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    plot(means, class_names,
         f'mean kernel attention per class, {osp.basename(args.config)}, '
         f'{int(counts.sum())} {args.split} images', args.out)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
