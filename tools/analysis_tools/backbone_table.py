"""What KRBackbone does to every backbone of mmpretrain's registry.

Usage: python tools/analysis_tools/backbone_table.py [--out docs/backbones.md]
       [--jobs 2] [--backbones ConvNeXt SwinTransformer ...]

Each backbone is built at its smallest arch (``mmkr.testing.backbones``)
and put through the checks of tests/test_backbone_registry.py: one
training step with a gradient for every KR parameter, d reaching every
dynamic layer, batch independence in eval mode and float64. The table
lists the layers made dynamic (folded: their input holds windows, heads or
tokens of each sample), those kept static and why, and the result.
"""
import argparse
import multiprocessing
import os.path as osp
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

from mmkr.testing.backbones import (EXCLUDED, case_of, check_backbone,
                                    registry_backbones)

HEADER = """# mmpretrain's backbones under KRBackbone

Produced by `python tools/analysis_tools/backbone_table.py --out
docs/backbones.md` with mmpretrain {version}; the same checks run in
`tests/test_backbone_registry.py`. Each backbone is built at its smallest arch
(options below), wrapped by `KRBackbone(method='odconv', kernel_num=1,
kr_dims=8)` without a probe size, and checked: one training step gives every
KR parameter a gradient, d reaches every dynamic layer, and in eval mode and
float64 (float32, to 1e-4, for a backbone that does not run in float64 even
static) each sample of a batch of 3 gives the outputs it gives alone.

Columns: **dynamic**, the layers made KR layers, of which **folded** see the
batch folded with windows, heads or tokens (each sample's kernel serves all
of its rows); **static_layers**, kept static by that option (by default the
first layer that runs, the stem or patch embedding); **kept static**, the
layers the construction-time probe keeps static, with the reason;
**never called**, layers whose weights the backbone uses without calling
them (nothing to replace).

RevVisionTransformer runs with `no_custom_backward=True`: its reversible
backward recomputes the blocks after the forward pass, where d is gone, and
KRBackbone refuses it, naming the blocks and `static_layers` as the way out.

"""


def describe(options: dict) -> str:
    return ', '.join(f'{k}={v!r}' for k, v in options.items()) or '(defaults)'


def row(name: str) -> list:
    case = case_of(name)
    setup = f'{describe(case.options)}; {case.size}x{case.size}'
    if name in EXCLUDED:
        return [
            name, setup, '-', '-', '-', '-', '-', f'excluded: {EXCLUDED[name]}'
        ]
    start = time.perf_counter()
    try:
        summary = check_backbone(name)
    except Exception as error:  # the table reports what fails, and why
        message = str(error).splitlines()[0][:300]
        return [
            name, setup, '-', '-', '-', '-', '-',
            f'FAIL: {type(error).__name__}: {message}'
        ]
    kept = '; '.join(f'{count}: {reason}'
                     for reason, count in summary['kept_static'].items())
    return [
        name, setup,
        str(summary['dynamic']),
        str(summary['folded']), ', '.join(summary['static_layers']) or '-',
        kept or '-',
        str(len(summary['never_run'])) if summary['never_run'] else '-',
        f'pass ({summary["precision"]}, '
        f'{time.perf_counter() - start:.0f} s)'
    ]


def write_table(path: str, names: list, rows: dict):
    """The markdown table of ``rows`` by backbone name, in registry order;
    backbones not checked yet are marked so (the file is rewritten after
    each backbone, so an interrupted run leaves what it found)."""
    import mmpretrain
    table = [
        rows.get(name) or [name, '-', '-', '-', '-', '-', '-', 'not checked']
        for name in names
    ]
    passed = sum(r[-1].startswith('pass') for r in table)
    excluded = sum(r[-1].startswith('excluded') for r in table)
    unchecked = sum(r[-1] == 'not checked' for r in table)
    lines = [
        HEADER.format(version=mmpretrain.__version__),
        f'{len(table)} backbones: {passed} pass, {excluded} excluded, '
        f'{len(table) - passed - excluded - unchecked} fail' +
        (f', {unchecked} not checked' if unchecked else '') + '.\n',
        '| backbone | options; input | dynamic | folded | static_layers '
        '| kept static | never called | result |',
        '|---|---|---|---|---|---|---|---|',
    ] + [
        '| ' + ' | '.join(cell.replace('|', '/') for cell in r) + ' |'
        for r in table
    ]
    text = '\n'.join(lines) + '\n'
    if path:
        with open(path, 'w') as f:
            f.write(text)
    else:
        print(text)


def read_rows(path: str) -> dict:
    """The rows of a table this tool wrote, by backbone name."""
    rows = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip('|').split(' | ')]
            if line.startswith('| ') and len(cells) == 8 and cells[0] not in (
                    'backbone', '---'):
                rows[cells[0]] = cells
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', help='markdown file to write')
    parser.add_argument(
        '--backbones',
        nargs='*',
        help='check only these, in this order (with --out: the file keeps '
        'its rows of the others)')
    parser.add_argument('--jobs',
                        type=int,
                        default=1,
                        help='backbones checked at once')
    args = parser.parse_args()
    checked = args.backbones or registry_backbones()
    rows = {}
    if args.out and args.backbones and osp.exists(args.out):
        rows = {
            name: cells
            for name, cells in read_rows(args.out).items()
            if name not in checked
        }
    listed = sorted(set(checked) | set(rows))
    # a fresh process for each backbone: none inherits another's state
    with ProcessPoolExecutor(args.jobs,
                             multiprocessing.get_context('spawn'),
                             max_tasks_per_child=1) as pool:
        futures = {pool.submit(row, name): name for name in checked}
        for future in as_completed(futures):
            rows[futures[future]] = future.result()
            print(' | '.join(rows[futures[future]]),
                  file=sys.stderr,
                  flush=True)
            if args.out:
                write_table(args.out, listed, rows)
    if not args.out:
        write_table(None, listed, rows)


if __name__ == '__main__':
    main()
