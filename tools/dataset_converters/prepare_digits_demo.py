"""Write scikit-learn's handwritten digits as an ImageNet-style image folder.

The 1797 8x8 digits ship with scikit-learn, so the demo job needs no
download. Each digit becomes an RGB PNG (grey replicated, ink bright, upscaled
with nearest-neighbour) under ``OUT/{train,val}/<digit>/<index>.png``, split
per class with a fixed seed, which mmpretrain's ``CustomDataset`` reads
without annotation files.

The script never removes a file it did not write. A manifest in ``OUT``
records what it wrote and with which options: run again with the same
options, it finds the dataset complete and writes nothing; any other
non-empty ``OUT`` is refused, and ``--force`` replaces only the files of the
manifest (still refusing if anything else is there).

Example::

    python tools/dataset_converters/prepare_digits_demo.py   # data/digits
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

MANIFEST = 'digits_demo_manifest.json'


def parse_args():
    parser = argparse.ArgumentParser(
        description='Write the scikit-learn digits as PNGs in train/ and '
        'val/ class folders')
    parser.add_argument(
        '--out-dir', default='data/digits', help='the dataset root to write')
    parser.add_argument(
        '--size', type=int, default=32, help='side of the written images')
    parser.add_argument(
        '--val-ratio',
        type=float,
        default=0.2,
        help='fraction of each class that goes to val/')
    parser.add_argument(
        '--per-class',
        type=int,
        help='keep only the first N digits of each class (a small subset)')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the train/val split')
    parser.add_argument(
        '--force',
        action='store_true',
        help='replace the files of an earlier run of this script in OUT')
    args = parser.parse_args()
    if args.size < 8:
        parser.error(f'--size must be >= 8, got {args.size}')
    if not 0 < args.val_ratio < 1:
        parser.error(f'--val-ratio must be in (0, 1), got {args.val_ratio}')
    if args.per_class is not None and args.per_class < 2:
        parser.error('--per-class must be >= 2 (a train and a val image per '
                     f'class), got {args.per_class}')
    return args


def select(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` samples of every class."""
    return np.sort(
        np.concatenate([
            np.flatnonzero(labels == c)[:per_class]
            for c in np.unique(labels)
        ]))


def to_rgb(digit: np.ndarray, size: int) -> Image.Image:
    """An 8x8 digit with values 0..16 as a ``size`` x ``size`` RGB image."""
    grey = Image.fromarray(np.round(digit * (255 / 16)).astype(np.uint8))
    return grey.resize((size, size), Image.NEAREST).convert('RGB')


def read_manifest(out_dir: str) -> dict:
    path = osp.join(out_dir, MANIFEST)
    if not osp.isfile(path):
        return dict(options=None, files=[])
    with open(path) as f:
        return json.load(f)


def check_target(out_dir: str, options: dict,
                 force: bool) -> Optional[List[str]]:
    """The files of an earlier run to replace, or None when ``out_dir``
    already holds the dataset these options write; raise if it holds
    anything this script may not overwrite."""
    existing = sorted(
        osp.relpath(osp.join(root, name), out_dir)
        for root, _, names in os.walk(out_dir) for name in names)
    if not existing:
        return []
    manifest = read_manifest(out_dir)
    owned = manifest['files']
    complete = set(existing) == set(owned) | {MANIFEST}
    if complete and manifest['options'] == options and not force:
        return None
    if not force:
        raise FileExistsError(
            f'{out_dir} is not empty ({len(existing)} files) and does not '
            'hold the dataset these options write; refusing to overwrite '
            'it. Choose another --out-dir, or pass --force to replace the '
            'files of an earlier run of this script.')
    foreign = sorted(set(existing) - set(owned) - {MANIFEST})
    if foreign:
        raise FileExistsError(
            f'{out_dir} holds {len(foreign)} files this script did not '
            f'write (e.g. {foreign[0]}); --force replaces only its own '
            'files. Move them away or choose another --out-dir.')
    return [name for name in owned if name in existing]


def file_names(labels: np.ndarray,
               indices: Dict[str, np.ndarray]) -> Dict[str, int]:
    """``<split>/<digit>/<index>.png`` -> index of the digit."""
    return {
        osp.join(split, str(labels[i]), f'{i:04d}.png'): i
        for split, split_indices in indices.items() for i in split_indices
    }


def main():
    args = parse_args()
    options = dict(
        size=args.size,
        val_ratio=args.val_ratio,
        per_class=args.per_class,
        seed=args.seed)
    try:
        replaced = check_target(args.out_dir, options, args.force)
    except FileExistsError as err:
        sys.exit(f'error: {err}')
    if replaced is None:
        print(f'{args.out_dir} already holds these digits; nothing to do')
        return

    digits = load_digits()
    keep = (select(digits.target, args.per_class)
            if args.per_class is not None else np.arange(len(digits.target)))
    train, val = train_test_split(
        keep,
        test_size=args.val_ratio,
        random_state=args.seed,
        stratify=digits.target[keep])

    names = file_names(digits.target,
                       dict(train=np.sort(train), val=np.sort(val)))
    for name in replaced:
        os.remove(osp.join(args.out_dir, name))
    # the manifest first: an interrupted run leaves only files it lists,
    # which --force may replace
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, MANIFEST), 'w') as f:
        json.dump(dict(options=options, files=list(names)), f, indent=0)
    for name, index in names.items():
        path = osp.join(args.out_dir, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        to_rgb(digits.images[index], args.size).save(path)
    print(f'Wrote {len(train)} train and {len(val)} val images '
          f'({args.size}x{args.size} RGB PNG) to {args.out_dir}')


if __name__ == '__main__':
    main()
