"""Refresh the measured FLOPs and Parameters of every metafile model.

Usage: python tools/analysis_tools/update_metafiles.py [configs/*/metafile.yml]

Each model's numbers are measured from its config with
``mmkr.analysis.count_flops`` / ``count_params`` at 224x224 and written back
in place, leaving the rest of the file (comments, poster numbers) as it is.
"""
import argparse
import glob
import re

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401
from mmkr.analysis import count_flops, count_params

MEASURED = re.compile(r'^(\s+)(FLOPs|Parameters): \d+$')


def measure(config: str) -> dict:
    model = MODELS.build(Config.fromfile(config).model).eval()
    return dict(FLOPs=count_flops(model), Parameters=count_params(model))


def update(path: str) -> None:
    lines = open(path).read().split('\n')
    numbers = None
    for i, line in enumerate(lines):
        if line.lstrip().startswith('- Name:'):
            config = next(
                entry.split(':', 1)[1].strip() for entry in lines[i:]
                if entry.lstrip().startswith('Config:'))
            numbers = measure(config)
        # the poster's numbers ('105M') are text and never match
        match = MEASURED.match(line)
        if match and numbers is not None:
            lines[i] = f'{match[1]}{match[2]}: {numbers[match[2]]}'
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    print(f'updated {path}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('metafiles', nargs='*',
                        default=sorted(glob.glob('configs/*/metafile.yml')))
    init_default_scope('mmpretrain')
    for path in parser.parse_args().metafiles:
        update(path)


if __name__ == '__main__':
    main()
