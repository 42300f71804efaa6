"""The poster's comparison in miniature: train several configs for several
seeds and tabulate top-1 (mean ± std over seeds), parameters, FLOPs,
training-step time and the silhouette scores of kernels and features.

Every config is trained once per seed by ``tools/train.py``'s main (the
real mmengine Runner) in a forked child process, in
``WORK_DIR/<config>/seed<S>/``, with ``--protocol`` (a config fragment: the
data and schedule changes of the comparison) and ``--cfg-options`` merged
onto it and ``randomness.seed`` set; the merged config is written beside
the run as ``WORK_DIR/<config>/seed<S>.py``. A run
whose final checkpoint (``epoch_<max_epochs>.pth``) exists is not trained
again, and an interrupted one resumes from its last checkpoint; a run
directory trained from another merged config is refused. Then:

- top-1: the final validation of each run, read from the run's own log
  (``vis_data/scalars.json``);
- silhouettes: of the per-sample kernels of the last dynamic layer and of
  the pooled features of ``--per-class`` validation images per class,
  cosine, computed by ``tools/visualization/vis_tsne.py``'s functions
  (its t-SNE PNGs land in ``<run>/tsne/``; cached in
  ``<run>/silhouettes.json``). Kernels are each conv's ``sample_kernels``
  (every method; DCD's of eval mode); a static model has '-' there;
- params and FLOPs (multiply-adds of one ``--input-size`` image):
  ``mmkr.analysis``;
- training-step time (forward, loss, backward, SGD step of one batch of the
  config's training batch size on synthetic images):
  ``tools/analysis_tools/benchmark.py``'s round robin, every config in one
  process taking turns, so that other load on the machine slows them alike
  (the runs' own logged times come from different moments).

Outputs in ``WORK_DIR``: ``results.md``, ``results.csv`` and
``accuracy_vs_flops.png``. Example (configs/demo/README.md)::

    python tools/analysis_tools/compare_methods.py --preset digits \\
        --protocol configs/_base_/protocols/digits_fewshot.py \\
        --seeds 0 1 2 --work-dir work_dirs/compare_methods
"""
import argparse
import copy
import csv
import importlib.util
import json
import multiprocessing
import os
import os.path as osp
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Dict, List, NamedTuple, Optional

import numpy as np
import torch
from mmengine.config import Config, DictAction

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# every method of the poster's ResNet-18 rows, at the demo's scale
PRESETS = {
    'digits': [
        f'configs/demo/resnet18_{name}_digits.py'
        for name in ('static', 'condconv8', 'dyconv4', 'dcd', 'weightnet',
                     'odconv1', 'odconv4', 'kw1x', 'kw4x', 'kr1', 'kr4')
    ]
}
# vis_tsne.py's defaults
TSNE_OPTIONS = dict(kernel_dims=4096, perplexity=30., batch_size=64, seed=0)
TABLE_COLUMNS = ('method', 'config', 'top-1 (%)', 'top-1 per seed',
                 'params', 'FLOPs', 'train step (ms)', 'silhouette kernels',
                 'silhouette features')


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train configs for several seeds and tabulate top-1, '
        'params, FLOPs, step time and silhouettes')
    parser.add_argument('configs', nargs='*', help='config files')
    parser.add_argument(
        '--preset', choices=sorted(PRESETS),
        help='compare these configs (after any given ones)')
    parser.add_argument(
        '--work-dir', default='work_dirs/compare_methods',
        help='where the runs, the table and the plot are written')
    parser.add_argument(
        '--seeds', type=int, nargs='+', default=[0, 1, 2],
        help='train every config once per seed')
    parser.add_argument(
        '--protocol',
        help='config fragment merged onto every config (the comparison\'s '
        'data and schedule)')
    parser.add_argument(
        '--per-class', type=int, default=30,
        help='silhouettes over this many validation images per class')
    parser.add_argument(
        '--input-size', type=int, default=32,
        help='image side for FLOPs and the step time')
    parser.add_argument(
        '--timing-repeat', type=int, default=10,
        help='timed rounds of the training step (the median is reported)')
    parser.add_argument(
        '--threads', type=int, default=1,
        help='CPU threads per training run and for the analysis (with '
        'several runs or other jobs on few cores a second thread mostly '
        'waits)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='settings merged onto every config after --protocol, e.g. '
        'train_cfg.max_epochs=1')
    args = parser.parse_args()
    args.configs = list(args.configs) + PRESETS.get(args.preset, [])
    if not args.configs:
        parser.error('give configs or --preset')
    if len(set(args.configs)) != len(args.configs):
        parser.error('a config is given twice')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error('a seed is given twice')
    for name in ('per_class', 'input_size', 'timing_repeat', 'threads'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be >= 1')
    return args


def load_tool(path: str):
    """A script of tools/ as a module (tools/ is no package)."""
    name = osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- runs
class Run(NamedTuple):
    """One seed of one config: its merged config and where it trains."""
    name: str
    seed: int
    cfg: Config
    config_file: str
    work_dir: str

    @property
    def final_checkpoint(self) -> str:
        return osp.join(self.work_dir,
                        f'epoch_{self.cfg.train_cfg.max_epochs}.pth')


def merged_config(config: str, protocol: Optional[str],
                  cfg_options: Optional[dict]) -> Config:
    """``config`` with the protocol and then the options merged in."""
    cfg = Config.fromfile(config)
    if protocol:
        cfg.merge_from_dict(Config.fromfile(protocol).to_dict())
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def with_seed(cfg: Config, seed: int) -> Config:
    """A copy of ``cfg`` whose runs use ``seed``."""
    cfg = copy.deepcopy(cfg)
    cfg.merge_from_dict({'randomness.seed': seed})
    return cfg


def plan_runs(args) -> Dict[str, List[Run]]:
    """The runs of every config, by config name, in the order given."""
    runs = {}
    for config in args.configs:
        name = osp.splitext(osp.basename(config))[0]
        cfg = merged_config(config, args.protocol, args.cfg_options)
        runs[name] = [
            Run(name, seed, with_seed(cfg, seed),
                osp.join(args.work_dir, name, f'seed{seed}.py'),
                osp.join(args.work_dir, name, f'seed{seed}'))
            for seed in args.seeds
        ]
    return runs


def write_config(run: Run):
    """Write the run's merged config; refuse a run directory that holds a
    run of another config (its results would be mixed into the table)."""
    text = run.cfg.pretty_text
    if osp.exists(run.config_file):
        with open(run.config_file) as f:
            if f.read() != text:
                raise ValueError(
                    f'{run.work_dir} was trained from another config than '
                    f'{run.name} with these --protocol / --cfg-options / '
                    f'seed ({run.config_file} differs); choose another '
                    '--work-dir')
        return
    os.makedirs(osp.dirname(run.config_file), exist_ok=True)
    with open(run.config_file, 'w') as f:
        f.write(text)


def _train_child(run: Run, out_path: str, threads: int):
    """In a forked child: tools/train.py's main on the run's config, its
    output to ``out_path``."""
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, sys.stdout.fileno())
    os.dup2(out, sys.stderr.fileno())
    torch.set_num_threads(threads)
    # a persistent dataloader worker outlives the training loop and keeps
    # the child from exiting
    sys.argv = [
        'tools/train.py', run.config_file, '--work-dir', run.work_dir,
        '--resume', '--no-persistent-workers', '--cfg-options',
        f'env_cfg.torch_num_threads={threads}'
    ]
    load_tool('tools/train.py').main()


def train(run: Run, threads: int):
    """Train (or resume) ``run`` with tools/train.py in a forked child
    process, its output in ``<run>/train.out``. The child starts with the
    parent's imports (most of a short run's time when paid per run) and
    takes none of a run's global state (loggers, visualizer, message hub,
    seeds, determinism flags) back."""
    os.makedirs(run.work_dir, exist_ok=True)
    out_path = osp.join(run.work_dir, 'train.out')
    child = multiprocessing.get_context('fork').Process(
        target=_train_child, args=(run, out_path, threads))
    child.start()
    child.join()
    if child.exitcode != 0 or not osp.exists(run.final_checkpoint):
        with open(out_path) as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'training {run.name} seed {run.seed} failed '
                           f'(exit {child.exitcode}); {out_path} ends:\n'
                           f'{tail}')


def train_all(runs: Dict[str, List[Run]], threads: int):
    """Train every run that has no final checkpoint yet."""
    todo = [
        run for seeds in runs.values() for run in seeds
        if not osp.exists(run.final_checkpoint)
    ]
    for run in (run for seeds in runs.values() for run in seeds):
        write_config(run)
    print(f'{len(todo)} of {sum(map(len, runs.values()))} runs to train',
          flush=True)
    for i, run in enumerate(todo, 1):
        start = time.perf_counter()
        train(run, threads)
        print(f'[{i}/{len(todo)}] {run.name} seed {run.seed}: '
              f'{time.perf_counter() - start:.0f} s', flush=True)


def final_accuracy(run: Run) -> float:
    """Top-1 of the run's last validation after its last epoch, from its
    own logs (a resumed run has one log directory per start)."""
    max_epochs = run.cfg.train_cfg.max_epochs
    found = None
    for entry in sorted(os.listdir(run.work_dir)):
        path = osp.join(run.work_dir, entry, 'vis_data', 'scalars.json')
        if not osp.isfile(path):
            continue
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if ('accuracy/top1' in record
                        and record['step'] == max_epochs):
                    found = record['accuracy/top1']
    if found is None:
        raise RuntimeError(
            f'{run.work_dir} has its final checkpoint but no validation of '
            f'epoch {max_epochs} in its logs; delete it to train it again')
    return found


# ------------------------------------------------------------ analysis
def kernel_layer(model):
    """The last dynamic conv, whose kernels vis_tsne.py reads, or None (a
    static model)."""
    from mmkr.models.backbones import KRBackbone
    from mmkr.models.layers import DynamicConvBase
    if not isinstance(model.backbone, KRBackbone):
        return None
    convs = [
        layer for layer in model.backbone.dynamic_layers.values()
        if isinstance(layer, DynamicConvBase)
    ]
    return convs[-1] if convs else None


def compute_silhouettes(run: Run, per_class: int) -> Dict[str, float]:
    """Cosine silhouettes of kernels and features of the final checkpoint
    on the validation images, with vis_tsne.py's functions (which also
    write the t-SNE PNGs to ``<run>/tsne/``)."""
    from mmpretrain import get_model
    from mmpretrain.registry import DATASETS
    tsne = load_tool('tools/visualization/vis_tsne.py')
    options = SimpleNamespace(**TSNE_OPTIONS)
    # get_model writes the data preprocessor into the config it is given
    model = get_model(copy.deepcopy(run.cfg),
                      pretrained=run.final_checkpoint,
                      device='cpu').eval()
    dataset = DATASETS.build(run.cfg.val_dataloader.dataset)
    class_names = dataset.metainfo['classes']
    indices = tsne.select_samples(dataset, len(class_names), per_class)
    layer = kernel_layer(model)
    data = tsne.collect(model, dataset, indices, layer, options)
    out_dir = osp.join(run.work_dir, 'tsne')
    os.makedirs(out_dir, exist_ok=True)
    scores = {}
    for name in ('kernels', 'features'):
        if name in data:
            scores[name], scores[f'{name}_tsne'] = tsne.embed_and_plot(
                data[name], data['labels'], class_names,
                f'{run.name} seed {run.seed}: {name}',
                osp.join(out_dir, f'tsne_{name}.png'), options)
    return {name: float(score) for name, score in scores.items()}


def silhouettes(run: Run, per_class: int) -> Dict[str, float]:
    """The run's silhouettes, computed once and kept in
    ``<run>/silhouettes.json`` (with the sample count they were made of)."""
    path = osp.join(run.work_dir, 'silhouettes.json')
    if osp.isfile(path):
        with open(path) as f:
            cached = json.load(f)
        if cached['per_class'] == per_class:
            return cached['scores']
    scores = compute_silhouettes(run, per_class)
    with open(path, 'w') as f:
        json.dump(dict(per_class=per_class, scores=scores), f, indent=1)
    return scores


def model_costs(runs: Dict[str, List[Run]], args) -> Dict[str, dict]:
    """Params, FLOPs and the training-step time (ms) of every config."""
    from mmengine.registry import init_default_scope

    from mmkr.analysis import count_flops, count_params
    bench = load_tool('tools/analysis_tools/benchmark.py')
    init_default_scope('mmpretrain')
    models = {
        name: bench.build_classifier(seeds[0].cfg, torch.device('cpu'))
        for name, seeds in runs.items()
    }
    times = step_times(bench, models, runs, args)
    return {
        name: dict(
            params=count_params(model),
            flops=count_flops(model, (3, args.input_size, args.input_size)),
            step_ms=times[name] * 1e3)
        for name, model in models.items()
    }


def step_times(bench, models: dict, runs: Dict[str, List[Run]],
               args) -> Dict[str, float]:
    """Median seconds of a training step of each model at its config's
    batch size, the models taking turns (benchmark.py's round robin)."""
    device = torch.device('cpu')
    steps = {}
    for name, model in models.items():
        options = SimpleNamespace(
            input_size=args.input_size,
            batch_size=runs[name][0].cfg.train_dataloader.batch_size,
            channels_last=False, amp=False, amp_dtype=None)
        steps[name] = bench.model_steps(model, options, device,
                                        compiled=False)['train']
    print('timing the training steps', flush=True)
    return bench.time_round_robin(steps, args.timing_repeat, 1, device)


def method_label(cfg: Config) -> str:
    """'static', 'KR 4x', 'ODConv 1x', 'DCD', 'KR on DCD', ..."""
    from mmkr.models.layers import get_method
    backbone = cfg.model.backbone
    if backbone.type != 'KRBackbone':
        return 'static'
    method = get_method(backbone.get('method', 'odconv'))
    label = method.display_name
    if backbone.get('with_kr', True):
        label = 'KR' if method.name == 'odconv' else f'KR on {label}'
    if method.size_option is not None:
        options = {**backbone.get('method_cfg', {}), **backbone}
        label += f' {options.get(method.size_option, 1)}x'
    return label


# --------------------------------------------------------------- table
def mean_std(values: List[float]) -> tuple:
    """Mean and sample standard deviation (nan for one value)."""
    return (statistics.mean(values),
            statistics.stdev(values) if len(values) > 1 else float('nan'))


def summarize(runs: Dict[str, List[Run]], costs: Dict[str, dict],
              per_class: int) -> List[dict]:
    """One row per config: the mean and std over seeds of top-1 and the
    silhouettes (nan where a model has no readable kernels), the per-seed
    top-1, and the config's costs."""
    rows = []
    for name, seeds in runs.items():
        accuracies = [final_accuracy(run) for run in seeds]
        scores = [silhouettes(run, per_class) for run in seeds]
        row = dict(method=method_label(seeds[0].cfg), config=name,
                   seeds=[run.seed for run in seeds], top1=accuracies,
                   **costs[name])
        row['top1_mean'], row['top1_std'] = mean_std(accuracies)
        for key in ('kernels', 'features'):
            values = [s[key] for s in scores if key in s]
            row[f'{key}_mean'], row[f'{key}_std'] = (
                mean_std(values) if values else (float('nan'), ) * 2)
        rows.append(row)
    return rows


def pm(mean: float, std: float, digits: int) -> str:
    """'mean ± std', 'mean' for one seed, '-' for no value."""
    if np.isnan(mean):
        return '-'
    if np.isnan(std):
        return f'{mean:.{digits}f}'
    return f'{mean:.{digits}f} ± {std:.{digits}f}'


def table_cells(row: dict) -> List[str]:
    """The Markdown cells of a row, in :data:`TABLE_COLUMNS`' order."""
    return [
        row['method'], row['config'],
        pm(row['top1_mean'], row['top1_std'], 2),
        ' / '.join(f'{a:.2f}' for a in row['top1']),
        f'{row["params"] / 1e6:.3f}M', f'{row["flops"] / 1e6:.2f}M',
        f'{row["step_ms"]:.0f}',
        pm(row['kernels_mean'], row['kernels_std'], 3),
        pm(row['features_mean'], row['features_std'], 3)
    ]


def write_markdown(rows: List[dict], path: str):
    """The table as Markdown, one line a config."""
    lines = ['| ' + ' | '.join(TABLE_COLUMNS) + ' |',
             '|' + '---|' * len(TABLE_COLUMNS)]
    lines += ['| ' + ' | '.join(table_cells(row)) + ' |' for row in rows]
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


CSV_FIELDS = ('method', 'config', 'seeds', 'top1', 'top1_mean', 'top1_std',
              'params', 'flops', 'step_ms', 'kernels_mean', 'kernels_std',
              'features_mean', 'features_std')


def write_csv(rows: List[dict], path: str):
    """The table's numbers unrounded; per-seed lists joined by spaces."""
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({
                key: (' '.join(map(str, row[key])) if isinstance(
                    row[key], list) else row[key])
                for key in CSV_FIELDS
            })


def plot(rows: List[dict], path: str, title: str):
    """Top-1 against FLOPs, one point per config with the std over seeds
    as its error bar."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, row in enumerate(rows):
        std = 0 if np.isnan(row['top1_std']) else row['top1_std']
        ax.errorbar(row['flops'] / 1e6, row['top1_mean'], yerr=std,
                    fmt='o', capsize=4, color=f'C{i % 10}')
        ax.annotate(row['method'], (row['flops'] / 1e6, row['top1_mean']),
                    textcoords='offset points', xytext=(6, 4), fontsize=8)
    ax.set_xlabel('FLOPs (M multiply-adds per image)')
    ax.set_ylabel('top-1 (%), mean ± std over seeds')
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    args = parse_args()
    import mmkr  # noqa: F401  (registers mmkr's modules)
    torch.set_num_threads(args.threads)
    runs = plan_runs(args)
    train_all(runs, args.threads)
    costs = model_costs(runs, args)
    rows = summarize(runs, costs, args.per_class)
    os.makedirs(args.work_dir, exist_ok=True)
    paths = {
        kind: osp.join(args.work_dir, name)
        for kind, name in (('md', 'results.md'), ('csv', 'results.csv'),
                           ('png', 'accuracy_vs_flops.png'))
    }
    write_markdown(rows, paths['md'])
    write_csv(rows, paths['csv'])
    plot(rows, paths['png'],
         f'CPU proxy, not ImageNet: {len(args.seeds)} seeds, '
         f'{args.input_size}x{args.input_size} images')
    with open(paths['md']) as f:
        print(f.read())
    print('\n'.join(paths.values()))


if __name__ == '__main__':
    main()
