"""Mean and standard deviation of a config's initial parameters, per layer
type and parameter group, so that a config's starting point can be set
beside another implementation's.

The model is built as training builds it (mmpretrain's ``MODELS.build``,
then ``init_weights()``) with ``--seed``. Groups
(:func:`mmkr.analysis.parameter_groups`): a parameter of a dynamic layer, of
the d_0 encoder or of a classification head is grouped by its path inside
that module (``WeightNetConv2d/generator.fc2.weight``), any other by the type
of the module that holds it (``BatchNorm2d/weight``); the statistics pool
every value of a group::

    python tools/analysis_tools/init_stats.py configs/weightnet/resnet18_weightnet.py \\
        --out work_dirs/weightnet_init.json

With ``--against FILE.json`` (a file this tool wrote, or one written the
same way from another implementation's model), each group common to both is
compared: the relative difference of the standard deviations,
(std - std_ref) / std_ref, that difference in units of its sampling error
(both sides, independent normal values: a group that pools layers of
different std varies more, a few units are noise there), and the difference of the means in units of
the reference's std. Groups only one side has are listed.
"""
import argparse
import json
import logging
import math
import sys
from typing import Dict

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401  (registers mmkr's modules)
from mmkr.analysis import (GroupStats, compare_statistics, init_statistics,
                           relative_sampling_error)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='statistics of the initial parameters of a config')
    parser.add_argument('config')
    parser.add_argument('--against', metavar='FILE.json',
                        help='reference statistics to compare with')
    parser.add_argument('--out', metavar='FILE.json',
                        help='write the statistics here')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config')
    return parser.parse_args(argv)


def build_initialised(cfg: Config, seed: int) -> torch.nn.Module:
    """The config's model, built and initialised as the training Runner
    does, with its initialisation log silenced."""
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def load_statistics(path: str) -> Dict[str, GroupStats]:
    with open(path) as f:
        data = json.load(f)
    groups = data.get('groups') if isinstance(data, dict) else None
    if not isinstance(groups, dict):
        raise ValueError(f'--against {path}: expected a JSON object with a '
                         '"groups" object of {"numel", "mean", "std", '
                         '"tensors"} entries, as --out writes')
    try:
        return {key: GroupStats(**value) for key, value in groups.items()}
    except TypeError as e:
        raise ValueError(f'--against {path}: every group needs exactly the '
                         f'keys {list(GroupStats._fields)}: {e}') from None


def print_statistics(stats: Dict[str, GroupStats]):
    width = max(len(k) for k in stats)
    print(f'{"group":<{width}}  {"tensors":>7}  {"numel":>10}  '
          f'{"mean":>11}  {"std":>10}')
    for key, s in stats.items():
        print(f'{key:<{width}}  {s.tensors:>7}  {s.numel:>10}  '
              f'{s.mean:>11.4g}  {s.std:>10.4g}')


def print_comparison(stats: Dict[str, GroupStats],
                     reference: Dict[str, GroupStats]):
    diffs = compare_statistics(stats, reference)
    print()
    if diffs:
        width = max(len(k) for k in diffs)
        print(f'{"group":<{width}}  {"std":>10}  {"std ref":>10}  '
              f'{"rel. diff":>9}  {"/ error":>8}  {"mean diff / std ref":>19}')
        for key, (rel_std, mean_diff) in diffs.items():
            ours, ref = stats[key], reference[key]
            error = math.hypot(relative_sampling_error(ours.numel),
                               relative_sampling_error(ref.numel))
            sigmas = (f'{rel_std / error:8.1f}' if ref.std > 0 else
                      f'{"-":>8}')
            print(f'{key:<{width}}  {ours.std:>10.4g}  {ref.std:>10.4g}  '
                  f'{rel_std:>+9.3f}  {sigmas}  {mean_diff:>+19.3f}')
    for name, only in (('this config', stats.keys() - reference.keys()),
                       ('the reference', reference.keys() - stats.keys())):
        if only:
            print(f'\nonly in {name}: {", ".join(sorted(only))}')


def main(argv=None):
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    reference = load_statistics(args.against) if args.against else None
    stats = init_statistics(build_initialised(cfg, args.seed))
    print_statistics(stats)
    if reference is not None:
        print_comparison(stats, reference)
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(
                dict(config=args.config, seed=args.seed,
                     groups={k: s._asdict() for k, s in stats.items()}),
                f, indent=1)


if __name__ == '__main__':
    sys.exit(main())
