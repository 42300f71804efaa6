"""Multiply-adds and parameters of mmkr / mmpretrain classifiers.

One or more configs::

    python tools/analysis_tools/get_flops.py configs/kr/resnet18_kr4.py

Every row of the poster's table, our FLOPs beside the poster's, with the
overhead of each dynamic model over its static baseline, then the other
networks the anchors publish (ResNet-50, MobileNetV2 1.0x, ConvNeXt-T,
Swin-T) beside their published FLOPs and parameters::

    python tools/analysis_tools/get_flops.py --all

A baseline must lie within 3% of the poster, a dynamic model's overhead
within 0.01G of the poster's (MobileNetV2 2M) or be explained by one of the
two counting conventions in which the poster's sources differ from ours
(:data:`mmkr.analysis.flops.OTHER_CONVENTIONS`); the tool exits with status 1
when a row does neither. Counting rules (dynamic layers included) are those
of :mod:`mmkr.analysis.flops`; the tool prints them with its table.
"""
import argparse
import os.path as osp
import sys
from typing import List, NamedTuple, Optional, Sequence

import torch
from mmengine.utils import track_iter_progress
from mmpretrain import get_model

import mmkr  # noqa: F401  (registers mmkr's modules)
from mmkr.analysis import (FLOP_CONVENTIONS, OTHER_CONVENTIONS,
                           candidate_weights, count_params, explain_overhead,
                           flop_analyzer, kr_parts)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


class PosterRow(NamedTuple):
    """A row of the poster's table: FLOPs in multiply-adds at 224x224 (None:
    a row beyond the poster), and the parameters of the method's authors'
    own model where they published one."""
    model: str
    method: str
    config: str
    poster_flops: Optional[float]
    authors_params: Optional[int] = None


# Parameters of the comparison methods' own models (built from their
# authors' code, docs/comparison_methods.md; DyConv and CondConv from the
# ODConv paper's table as the MCL paper cites it: no official code of theirs
# has these networks).
AUTHORS_PARAMS = {
    'configs/odconv/resnet18_odconv1.py': 11_943_944,
    'configs/odconv/resnet18_odconv4.py': 44_901_640,
    'configs/odconv/mobilenet-v2-050_odconv1.py': 2_425_537,
    'configs/odconv/mobilenet-v2-050_odconv4.py': 4_435_501,
    'configs/dcd/resnet18_dcd.py': 14_703_332,
    'configs/dcd/mobilenet-v2-050_dcd.py': 3_056_616,
    'configs/dyconv/resnet18_dyconv4.py': 45_470_000,
    'configs/condconv/resnet18_condconv8.py': 81_350_000,
    # KernelWarehouse's models built from its JSON configs (KR off)
    'configs/kernelwarehouse/resnet18_kw1d4x.py': 4_031_768,
    'configs/kernelwarehouse/resnet18_kw1d2x.py': 7_431_044,
    'configs/kernelwarehouse/resnet18_kw1x.py': 11_932_148,
    'configs/kernelwarehouse/resnet18_kw2x.py': 23_242_127,
    'configs/kernelwarehouse/resnet18_kw4x.py': 45_862_085,
    'configs/kernelwarehouse/resnet50_kw1d2x.py': 17_638_264,
    'configs/kernelwarehouse/resnet50_kw1x.py': 28_052_310,
    'configs/kernelwarehouse/resnet50_kw4x.py': 102_015_144,
    'configs/kernelwarehouse/mobilenet-v2-050_kw1x.py': 2_854_522,
    'configs/kernelwarehouse/mobilenet-v2-050_kw4x.py': 4_648_587,
    'configs/kernelwarehouse/mobilenet-v2_kw1x.py': 5_168_146,
    'configs/kernelwarehouse/mobilenet-v2_kw4x.py': 11_379_382,
    'configs/kernelwarehouse/convnext-tiny_kw1x.py': 39_370_674,
}


def _rows(model: str, family: str, flops: Sequence[Optional[float]],
          unit: float) -> List[PosterRow]:
    """Baseline, ODConv 1x/4x, KR 1x/4x of ``family``; None: not on the
    poster."""
    configs = [
        ('baseline', f'configs/baseline/{family}.py'),
        ('+ODConv (1x)', f'configs/odconv/{family}_odconv1.py'),
        ('+ODConv (4x)', f'configs/odconv/{family}_odconv4.py'),
        ('+KR (1x)', f'configs/kr/{family}_kr1.py'),
        ('+KR (4x)', f'configs/kr/{family}_kr4.py'),
    ]
    return [
        PosterRow(model, method, config, value * unit,
                  AUTHORS_PARAMS.get(config))
        for (method, config), value in zip(configs, flops)
        if value is not None
    ]


G, M = 1e9, 1e6
POSTER_ROWS = (
    _rows('ResNet-18', 'resnet18', (1.81, 1.84, 1.92, 1.85, 1.93), G) + [
        PosterRow(model, method, config, flops,
                  AUTHORS_PARAMS.get(config))
        for model, method, config, flops in (
            ('ResNet-18', '+DyConv (4x)',
             'configs/dyconv/resnet18_dyconv4.py', 1.86 * G),
            ('ResNet-18', '+WeightNet',
             'configs/weightnet/resnet18_weightnet.py', 1.83 * G),
            ('ResNet-18', '+DCD', 'configs/dcd/resnet18_dcd.py', 1.84 * G),
            ('ResNet-18', '+CondConv (8x)',
             'configs/condconv/resnet18_condconv8.py', None),
            ('ResNet-18', '+KR on DCD', 'configs/kr/resnet18_dcd_kr.py',
             None),
            ('ResNet-18', '+KR on CondConv (8x)',
             'configs/kr/resnet18_condconv8_kr.py', None),
        )
    ] + _rows('ResNet-18 slim', 'resnet18-slim',
              (1.35, 1.37, 1.44, 1.38, 1.45), G) +
    _rows('MobileNetV2 0.5x', 'mobilenet-v2-050', (97, 102, 106, 105, 109), M)
    + [
        PosterRow(model, method, config, flops,
                  AUTHORS_PARAMS.get(config))
        for model, method, config, flops in (
            ('MobileNetV2 0.5x', '+CondConv (8x)',
             'configs/condconv/mobilenet-v2-050_condconv8.py', 110 * M),
            ('MobileNetV2 0.5x', '+DyConv (4x)',
             'configs/dyconv/mobilenet-v2-050_dyconv4.py', 103 * M),
            ('MobileNetV2 0.5x', '+DCD',
             'configs/dcd/mobilenet-v2-050_dcd.py', 106 * M),
            ('MobileNetV2 0.5x', '+WeightNet',
             'configs/weightnet/mobilenet-v2-050_weightnet.py', None),
        )
    ] + [
        PosterRow(model, f'+{method}', f'configs/{config}.py', None,
                  AUTHORS_PARAMS.get(f'configs/{config}.py'))
        for model, method, config in (
            ('ResNet-18', 'KW (1/4x)', 'kernelwarehouse/resnet18_kw1d4x'),
            ('ResNet-18', 'KW (1/2x)', 'kernelwarehouse/resnet18_kw1d2x'),
            ('ResNet-18', 'KW (1x)', 'kernelwarehouse/resnet18_kw1x'),
            ('ResNet-18', 'KW (2x)', 'kernelwarehouse/resnet18_kw2x'),
            ('ResNet-18', 'KW (4x)', 'kernelwarehouse/resnet18_kw4x'),
            ('ResNet-18', 'KR on KW (1x)', 'kr/resnet18_kw1x_kr'),
            ('ResNet-18', 'KR on KW (4x)', 'kr/resnet18_kw4x_kr'),
            ('MobileNetV2 0.5x', 'KW (1x)',
             'kernelwarehouse/mobilenet-v2-050_kw1x'),
            ('MobileNetV2 0.5x', 'KW (4x)',
             'kernelwarehouse/mobilenet-v2-050_kw4x'),
            ('MobileNetV2 0.5x', 'KR on KW (4x)',
             'kr/mobilenet-v2-050_kw4x_kr'),
            ('ResNet-50', 'KW (1/2x)', 'kernelwarehouse/resnet50_kw1d2x'),
            ('ResNet-50', 'KW (1x)', 'kernelwarehouse/resnet50_kw1x'),
            ('ResNet-50', 'KW (4x)', 'kernelwarehouse/resnet50_kw4x'),
            ('MobileNetV2 1.0x', 'KW (1x)',
             'kernelwarehouse/mobilenet-v2_kw1x'),
            ('MobileNetV2 1.0x', 'KW (4x)',
             'kernelwarehouse/mobilenet-v2_kw4x'),
            ('ConvNeXt-Tiny', 'KW (1x)',
             'kernelwarehouse/convnext-tiny_kw1x'),
        )
    ] + _rows('ViT-Nano', 'vit-nano', (0.61, None, 0.62, 0.61, 0.62), G) +
    _rows('ViT-Tiny', 'vit-tiny', (1.26, None, 1.28, 1.27, 1.29), G) +
    _rows('PoolFormer-S12', 'poolformer-s12', (1.82, None, None, 1.84, 1.88),
          G))

class AnchorRow(NamedTuple):
    """A network the anchors publish beyond the poster: FLOPs (multiply-adds
    at 224x224) and parameters as their source prints them (None: not
    published)."""
    model: str
    method: str
    config: str
    flops: Optional[float]
    params: Optional[float]
    source: str


ODCONV_README = 'ODConv README'
ANCHOR_ROWS = tuple(
    AnchorRow(*row) for row in (
        ('ResNet-50', 'baseline', 'configs/baseline/resnet50.py', 3.858 * G,
         25.56 * M, ODCONV_README),
        ('ResNet-50', '+ODConv (1x)', 'configs/odconv/resnet50_odconv1.py',
         3.916 * G, 28.64 * M, ODCONV_README),
        ('ResNet-50', '+ODConv (4x)', 'configs/odconv/resnet50_odconv4.py',
         4.080 * G, 90.67 * M, ODCONV_README),
        ('ResNet-50', '+KR (1x)', 'configs/kr/resnet50_kr1.py', None, None,
         '-'),
        ('ResNet-50', '+KR (4x)', 'configs/kr/resnet50_kr4.py', None, None,
         '-'),
        ('MobileNetV2 1.0x', 'baseline', 'configs/baseline/mobilenet-v2.py',
         300.8 * M, 3.50 * M, ODCONV_README),
        ('MobileNetV2 1.0x', '+ODConv (1x)',
         'configs/odconv/mobilenet-v2_odconv1.py', 311.8 * M, 4.94 * M,
         ODCONV_README),
        ('MobileNetV2 1.0x', '+ODConv (4x)',
         'configs/odconv/mobilenet-v2_odconv4.py', 327.1 * M, 11.51 * M,
         ODCONV_README),
        ('MobileNetV2 1.0x', '+KR (1x)', 'configs/kr/mobilenet-v2_kr1.py',
         None, None, '-'),
        ('MobileNetV2 1.0x', '+KR (4x)', 'configs/kr/mobilenet-v2_kr4.py',
         None, None, '-'),
        ('ConvNeXt-T', 'baseline', 'configs/baseline/convnext-tiny.py',
         4.457 * G, 28.59 * M, 'mmpretrain metafile; KernelWarehouse README'),
        ('ConvNeXt-T', '+KR (1x)', 'configs/kr/convnext-tiny_kr1.py', None,
         None, '-'),
        ('ConvNeXt-T', '+KR (4x)', 'configs/kr/convnext-tiny_kr4.py', None,
         None, '-'),
        ('Swin-T', 'baseline', 'configs/baseline/swin-tiny.py', 4.36 * G,
         28.29 * M, 'mmpretrain metafile'),
        ('Swin-T', '+KR (1x)', 'configs/kr/swin-tiny_kr1.py', None, None,
         '-'),
    ))

# Overheads over the baseline must agree with the poster's to within this.
OVERHEAD_TOLERANCE = {'MobileNetV2 0.5x': 2 * M}
DEFAULT_OVERHEAD_TOLERANCE = 0.01 * G
BASELINE_TOLERANCE = 0.03


def measure(config: str, shape: Sequence[int]) -> tuple:
    """(multiply-adds, parameters, parts, candidate weights) of one image
    through the classifier of ``config``; parts splits the work of the KR
    modules (:func:`mmkr.analysis.kr_parts`: ``feat``, ``mlp``, ``d0``)."""
    model = get_model(config, device='cpu')
    with torch.no_grad():
        analyzer = flop_analyzer(model, torch.zeros(1, 3, *shape))
    return (analyzer.total(), count_params(model), kr_parts(analyzer, model),
            candidate_weights(model))


def overhead_parts(overhead: int, parts: dict) -> dict:
    """The overhead over the baseline in parts: ``mix``, the rest of the
    dynamic layers' work beyond the static conv/linear (the kernel mixing
    Σ_k a_k W_k), then ``feat``, ``mlp`` and ``d0`` of ``parts``."""
    mix = overhead - parts['feat'] - parts['mlp'] - parts['d0']
    return dict(mix=mix, **parts)


def fmt(value: float) -> str:
    return f'{value / G:.3f}G' if abs(value) >= 0.5 * G else \
        f'{value / M:.1f}M'


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]):
    widths = [max(len(str(r[i])) for r in [header, *rows])
              for i in range(len(header))]
    for row in [header, ['-' * w for w in widths], *rows]:
        print('  '.join(str(c).ljust(w) for c, w in zip(row, widths)))


def poster_table(shape: Sequence[int]) -> bool:
    """Print every poster row; True when no row is a ``MISS``."""
    baselines = {}
    table, all_ok = [], True
    # each row builds and traces a model: a bar on stderr shows progress
    for row in track_iter_progress(list(POSTER_ROWS), file=sys.stderr):
        flops, params, parts, candidates = measure(
            osp.join(REPO, row.config), shape)
        if row.method == 'baseline':
            baselines[row.model] = (flops, row.poster_flops)
            error = flops / row.poster_flops - 1
            status = 'ok' if abs(error) <= BASELINE_TOLERANCE else 'MISS'
            delta = delta_poster = split = '-'
            check, reason = f'{error:+.1%} of poster', ''
        elif row.model not in baselines:
            # a model beyond the poster, without a baseline config here
            delta = delta_poster = split = '-'
            status, check, reason = 'beyond', 'not on the poster', ''
        else:
            base, poster_base = baselines[row.model]
            ours = flops - base
            split_parts = overhead_parts(ours, parts)
            split = ' '.join(f'{name} {value / M:.1f}'
                             for name, value in split_parts.items() if value)
            delta, delta_poster = '+' + fmt(ours), '-'
            status, check, reason = 'beyond', 'not on the poster', ''
            if row.poster_flops is not None:
                theirs = row.poster_flops - poster_base
                tolerance = OVERHEAD_TOLERANCE.get(
                    row.model, DEFAULT_OVERHEAD_TOLERANCE)
                status, reason = explain_overhead(ours, theirs, tolerance,
                                                  split_parts['feat'],
                                                  split_parts['mix'],
                                                  candidates)
                delta_poster = '+' + fmt(theirs)
                check = f'overhead off by {fmt(ours - theirs)}'
        all_ok &= status != 'MISS'
        authors = ('-' if row.authors_params is None else
                   f'{row.authors_params / M:.2f}M')
        table.append([
            row.model, row.method, row.config, fmt(flops), delta,
            fmt(row.poster_flops) if row.poster_flops else '-', delta_poster,
            f'{params / M:.2f}M', authors, f'{status:9} {check}', split,
            reason
        ])
    print_table([
        'model', 'method', 'config', 'FLOPs', 'overhead', 'poster',
        'poster overhead', 'params', 'authors params', 'check',
        'overhead parts (M)', 'reason'
    ], table)
    print(f'\nTolerances: baselines within {BASELINE_TOLERANCE:.0%} of the '
          f'poster; overheads over the baseline within '
          f'{fmt(DEFAULT_OVERHEAD_TOLERANCE)} (MobileNetV2: '
          f'{fmt(OVERHEAD_TOLERANCE["MobileNetV2 0.5x"])}).\n'
          'Overhead parts: mix = kernel mixing Σ_k a_k W_k (the rest of the '
          'overhead), feat = products and means on features inside the '
          'dynamic layers, mlp = attention, fusion and KR generator MLPs, '
          'd0 = the FFT encoder of d_0.\n'
          'explained: the overhead differs by more than the tolerance, as '
          'a counting convention of the poster\'s sources explains:')
    for line in OTHER_CONVENTIONS:
        print(f'  - {line}')
    return all_ok


def anchor_table(shape: Sequence[int]) -> bool:
    """Print the anchors' other networks beside their published numbers;
    True when every published parameter count is ours to 0.01M (FLOPs
    differ by counting conventions and are shown, not checked)."""
    table, all_ok = [], True
    for row in track_iter_progress(list(ANCHOR_ROWS), file=sys.stderr):
        flops, params, *_ = measure(osp.join(REPO, row.config), shape)
        check = '-'
        if row.params is not None:
            ok = round(params / M, 2) == round(row.params / M, 2)
            all_ok &= ok
            check = 'ok' if ok else 'MISS'
        table.append([
            row.model, row.method, row.config, fmt(flops),
            fmt(row.flops) if row.flops else '-', f'{params / M:.2f}M',
            f'{row.params / M:.2f}M' if row.params else '-', check,
            row.source
        ])
    print_table([
        'model', 'method', 'config', 'FLOPs', 'published FLOPs', 'params',
        'published params', 'params check', 'source'
    ], table)
    return all_ok


def parse_args():
    parser = argparse.ArgumentParser(
        description='Multiply-adds and parameters of classifier configs')
    parser.add_argument('configs', nargs='*', help='config files')
    parser.add_argument(
        '--all',
        action='store_true',
        help="every row of the poster's table beside the poster's FLOPs")
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[224, 224],
        metavar=('H', 'W'),
        help='input image size')
    args = parser.parse_args()
    if not args.configs and not args.all:
        parser.error('give config files or --all')
    return args


def main():
    args = parse_args()
    print(f'Input: 3x{args.shape[0]}x{args.shape[1]}. Conventions:')
    for line in FLOP_CONVENTIONS:
        print(f'  - {line}')
    print()
    if args.configs:
        rows = []
        for config in track_iter_progress(args.configs, file=sys.stderr):
            if not osp.isfile(config):
                raise FileNotFoundError(f'config file not found: {config}')
            flops, params, *_ = measure(config, args.shape)
            rows.append([config, fmt(flops), f'{params / M:.2f}M'])
        print_table(['config', 'FLOPs', 'params'], rows)
    if args.all:
        if args.configs:
            print()
        poster_ok = poster_table(args.shape)
        print("\nThe anchors' other networks:")
        if not (anchor_table(args.shape) and poster_ok):
            raise SystemExit(1)


if __name__ == '__main__':
    main()
