"""t-SNE of generated kernels, kernel representations and pooled features.

The poster's figure: for the validation samples of N classes, a trained
dynamic model's per-sample kernels W_i of one dynamic conv or linear (any
method), the kernel representation d_i entering that layer and the pooled
feature of the last stage, each embedded in 2D by t-SNE and coloured by
class. A silhouette score per representation (on the vectors themselves,
cosine distance, and on the 2D embedding) lets two models be compared by
number::

    python tools/visualization/vis_tsne.py CONFIG CHECKPOINT \
        --num-classes 20 --per-class 50 --out-dir work_dirs/tsne_kr

The model is only read: forward hooks record what the layer computes.
The kernel of sample b is the layer's ``sample_kernels``, the W_b with
which it computes conv(x_b, W_b) or W_b x: ODConv's
f_b ⊙ c_b ⊙ Σ_k a_bk (s_b ⊙ W_k), KernelWarehouse's assembled cells,
WeightNet's generated kernel, DCD's merged one. Large kernels are compared
on a fixed random subset of ``--kernel-dims`` entries.
"""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.utils import ProgressBar
from mmpretrain import get_model
from mmpretrain.registry import DATASETS

import mmkr  # noqa: F401  (registers mmkr's modules)
from mmkr.models.backbones import KRBackbone
from mmkr.models.layers import DynamicConvBase, DynamicLinear

REPRESENTATIONS = ('kernels', 'kr', 'features')
# the dynamic layers that give their per-sample kernels (sample_kernels)
KERNEL_LAYERS = (DynamicConvBase, DynamicLinear)
KernelLayer = Union[KERNEL_LAYERS]


def parse_args():
    parser = argparse.ArgumentParser(
        description='t-SNE of the kernels, kernel representations and '
        'features of a dynamic model, coloured by class')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out-dir', required=True, help='where the PNGs are written')
    parser.add_argument(
        '--layer',
        help='dynamic conv or linear to read, named as in '
        'KRBackbone.dynamic_names '
        '(default: the last one)')
    parser.add_argument(
        '--num-classes', type=int, default=20,
        help='use the samples of the first N classes')
    parser.add_argument(
        '--per-class', type=int, default=50,
        help='at most this many samples of each class')
    parser.add_argument(
        '--split', choices=['val', 'test'], default='val',
        help='which dataloader of the config gives the samples')
    parser.add_argument(
        '--kernel-dims', type=int, default=4096,
        help='compare kernels on at most this many of their entries')
    parser.add_argument('--perplexity', type=float, default=30.)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, e.g. '
        'val_dataloader.dataset.data_root=data/digits')
    args = parser.parse_args()
    for name in ('num_classes', 'per_class', 'kernel_dims', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


class LayerRecorder:
    """Forward hooks that record, per batch, a dynamic layer's generated
    kernels (a fixed subset of their entries) and the d_i it receives."""

    def __init__(self, layer: KernelLayer, kernel_dims: int, seed: int):
        self.layer = layer
        self.kernel_dims, self.seed = kernel_dims, seed
        self.entries: Optional[torch.Tensor] = None
        self.records: Dict[str, List[torch.Tensor]] = dict(kernels=[], kr=[])
        self.handles = [
            layer.register_forward_pre_hook(self._record_kr),
            layer.generator.register_forward_hook(self._record_kernels),
        ]

    def _record_kr(self, module, args):
        chain = self.layer.chain
        if chain is not None and chain.d is not None:
            self.records['kr'].append(chain.d.detach().float().cpu())

    def _record_kernels(self, module, args, logits):
        att = module.activate(logits.detach())
        kernels = self.layer.sample_kernels(att).float().flatten(1)
        numel = kernels.shape[1]
        if self.entries is None and numel > self.kernel_dims:
            generator = torch.Generator().manual_seed(self.seed)
            self.entries = torch.randperm(
                numel, generator=generator)[:self.kernel_dims].sort().values
        if self.entries is not None:
            kernels = kernels[:, self.entries.to(kernels.device)]
        self.records['kernels'].append(kernels.cpu())

    def remove(self):
        for handle in self.handles:
            handle.remove()


def pooled_feature(model, inputs: torch.Tensor) -> torch.Tensor:
    """The last image feature, globally averaged: (B, C)."""
    feats = model.extract_feat(inputs)
    backbone = model.backbone
    feat = feats[-2] if isinstance(backbone, KRBackbone) and \
        backbone.return_kr else feats[-1]
    if isinstance(feat, (list, tuple)):
        feat = feat[-1]
    if feat.dim() == 4:
        feat = feat.mean(dim=(2, 3))
    elif feat.dim() == 3:
        feat = feat.mean(dim=1)
    return feat.float().cpu()


def select_samples(dataset, num_classes: int, per_class: int) -> List[int]:
    labels = np.asarray(dataset.get_gt_labels())
    classes = np.unique(labels)[:num_classes]
    if len(classes) < 2:
        raise ValueError('t-SNE by class needs samples of at least 2 '
                         f'classes; the dataset has {len(classes)}')
    return [
        int(i) for c in classes
        for i in np.flatnonzero(labels == c)[:per_class]
    ]


def collect(model, dataset, indices: List[int],
            layer: Optional[KernelLayer], args) -> Dict[str, np.ndarray]:
    """Pooled features and labels of the samples ``indices``, and the
    kernels and d that ``layer`` generates for them (none where ``layer``
    is None: a static model's features alone)."""
    recorder = (LayerRecorder(layer, args.kernel_dims, args.seed)
                if layer is not None else None)
    features, labels = [], []
    progress = ProgressBar(len(indices))
    try:
        with torch.no_grad():
            for start in range(0, len(indices), args.batch_size):
                chunk = indices[start:start + args.batch_size]
                batch = pseudo_collate([dataset[i] for i in chunk])
                data = model.data_preprocessor(batch, False)
                features.append(pooled_feature(model, data['inputs']))
                labels += [s.gt_label.item() for s in data['data_samples']]
                progress.update(len(chunk))
    finally:
        if recorder is not None:
            recorder.remove()
    print()
    out = dict(features=torch.cat(features).numpy(),
               labels=np.asarray(labels))
    records = recorder.records if recorder is not None else {}
    for name, parts in records.items():
        if parts:
            out[name] = torch.cat(parts).numpy()
    return out


def embed_and_plot(vectors: np.ndarray, labels: np.ndarray, class_names,
                   title: str, path: str, args) -> tuple:
    """Write the t-SNE scatter of ``vectors``; return the silhouette scores
    of the vectors (cosine) and of the 2D embedding (euclidean)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.metrics import silhouette_score

    vectors = vectors.astype(np.float64)
    # t-SNE's usual preprocessing: PCA to 50 dimensions first
    reduced = (PCA(50, random_state=args.seed).fit_transform(vectors)
               if min(vectors.shape) > 50 else vectors)
    perplexity = min(args.perplexity, (len(vectors) - 1) / 3)
    embedding = TSNE(
        2, perplexity=perplexity, init='pca',
        random_state=args.seed).fit_transform(reduced)
    score = silhouette_score(vectors, labels, metric='cosine')
    score_2d = silhouette_score(embedding, labels)

    fig, ax = plt.subplots(figsize=(6, 6))
    cmap = plt.get_cmap('tab20' if len(class_names) > 10 else 'tab10')
    for i, label in enumerate(np.unique(labels)):
        mask = labels == label
        ax.scatter(embedding[mask, 0], embedding[mask, 1], s=8,
                   color=cmap(i % cmap.N), label=class_names[label])
    ax.set_title(f'{title}\nsilhouette {score:.3f} (t-SNE {score_2d:.3f})',
                 fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(class_names) <= 20:
        ax.legend(fontsize=6, markerscale=2, loc='best')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return score, score_2d


def find_layer(model, name: Optional[str]):
    backbone = model.backbone
    if not isinstance(backbone, KRBackbone):
        raise ValueError(f'{type(backbone).__name__} has no dynamic layers: '
                         'give the config of a dynamic model')
    layers = backbone.dynamic_layers
    readable = [
        n for n in backbone.dynamic_names
        if isinstance(layers[n], KERNEL_LAYERS)
    ]
    if name is None and readable:
        name = readable[-1]
    if name not in readable:
        raise ValueError(f'no dynamic conv or linear {name!r}; those of '
                         f'this model are {readable}')
    return name, layers[name]


def main():
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    paths = {r: osp.join(args.out_dir, f'tsne_{r}.png') for r in
             REPRESENTATIONS}
    existing = [p for p in paths.values() if osp.exists(p)]
    if existing:
        raise FileExistsError(f'refusing to overwrite {existing}; choose '
                              'another --out-dir')

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    torch.manual_seed(args.seed)
    model = get_model(cfg, pretrained=args.checkpoint,
                      device=args.device).eval()
    layer_name, layer = find_layer(model, args.layer)

    dataset = DATASETS.build(cfg[f'{args.split}_dataloader'].dataset)
    indices = select_samples(dataset, args.num_classes, args.per_class)
    class_names = dataset.metainfo.get('classes') or [
        str(i) for i in range(max(dataset.get_gt_labels()) + 1)
    ]
    print(f'Extracting {len(indices)} samples of '
          f'{len(set(dataset.get_gt_labels()[i] for i in indices))} classes '
          f'at layer {layer_name}')
    data = collect(model, dataset, indices, layer, args)

    os.makedirs(args.out_dir, exist_ok=True)
    titles = dict(kernels=f'kernels W of {layer_name}',
                  kr=f'kernel representation d entering {layer_name}',
                  features='pooled features')
    print(f'{"representation":<16}{"silhouette":>12}{"t-SNE 2D":>12}  png')
    for name in REPRESENTATIONS:
        if name not in data:
            print(f'{name:<16}{"-":>12}{"-":>12}  (the model has no KR)')
            continue
        score, score_2d = embed_and_plot(data[name], data['labels'],
                                         class_names, titles[name],
                                         paths[name], args)
        print(f'{name:<16}{score:>12.4f}{score_2d:>12.4f}  {paths[name]}')


if __name__ == '__main__':
    main()
