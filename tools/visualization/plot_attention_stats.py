"""Curves of the attention statistics that :class:`AttentionStatsHook`
logged during a training run, one panel per statistic, one line per stage.

The hook writes ``attention/<stat>/<stage>`` scalars to every backend of
the runner's visualizer; mmengine's ``LocalVisBackend`` keeps them in
``<work_dir>/<timestamp>/vis_data/scalars.json``, which this tool reads
(the latest run of the work dir that has them, or the file given)::

    python tools/visualization/plot_attention_stats.py \
        work_dirs/resnet18_kr4_digits --out attention_stats.png
"""
import argparse
import glob
import json
import os
import os.path as osp
from collections import defaultdict

PREFIX = 'attention/'
# Panels in this order; a statistic the run did not log has none.
STATS = {
    'kernel_entropy': 'kernel attention entropy\n(1: uniform, 0: one kernel)',
    'temperature': 'temperature T',
    'channel': 'mean channel attention',
    'filter': 'mean filter attention',
    'spatial': 'mean spatial attention',
    'kr_norm': '||d|| (KR generator output)',
}


def parse_args():
    parser = argparse.ArgumentParser(
        description='Plot the scalars of AttentionStatsHook over a run')
    parser.add_argument(
        'source', help='a work dir, or a vis_data/scalars.json file')
    parser.add_argument('--out', required=True, help='the PNG to write')
    return parser.parse_args()


def read_series(path: str) -> dict:
    """stat -> stage -> ([steps], [values]) of the ``attention/`` scalars
    in one scalars.json (a JSON object per line)."""
    series = defaultdict(lambda: defaultdict(lambda: ([], [])))
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            for key, value in record.items():
                if key.startswith(PREFIX):
                    stat, _, stage = key[len(PREFIX):].partition('/')
                    steps, values = series[stat][stage]
                    steps.append(record['step'])
                    values.append(value)
    return series


def find_scalars(source: str) -> tuple:
    """The scalars.json to read and its series: ``source`` itself, or the
    latest run under the work dir ``source`` with attention scalars."""
    candidates = [source] if osp.isfile(source) else sorted(
        glob.glob(osp.join(source, '*', 'vis_data', 'scalars.json')),
        reverse=True)
    for path in candidates:
        series = read_series(path)
        if series:
            return path, series
    raise FileNotFoundError(
        f'no {PREFIX}* scalars in {source}: train with '
        "custom_hooks=[dict(type='AttentionStatsHook')] and a "
        'LocalVisBackend in the visualizer')


def plot(series: dict, title: str, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    stats = [s for s in STATS if s in series] + sorted(
        s for s in series if s not in STATS)
    columns = min(3, len(stats))
    rows = -(-len(stats) // columns)
    fig, axes = plt.subplots(rows, columns, squeeze=False,
                             figsize=(4 * columns, 3 * rows))
    for ax, stat in zip(axes.flat, stats):
        for stage, (steps, values) in series[stat].items():
            ax.plot(steps, values, label=stage, linewidth=1.2)
        ax.set_title(STATS.get(stat, stat), fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(stats):]:
        ax.axis('off')
    axes.flat[0].legend(fontsize=7, title='stage', title_fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    args = parse_args()
    path, series = find_scalars(args.source)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    # titled by the source as given, so that the same run draws the same PNG
    plot(series, f'attention statistics, {args.source}', args.out)
    print(f'read {path}\nwrote {args.out}')


if __name__ == '__main__':
    main()
