"""Downstream configs (configs/downstream) on tiny generated datasets: two
COCO images of 96x96 with one box and polygon each, or two ADE20K images of
64x64 with their label maps; a run of a few iterations with no evaluation
and no checkpoint saving. tests/test_downstream.py trains one step of each
config on them and tools/analysis_tools/downstream_step_time.py times the
steps.
"""
import json
from pathlib import Path
from typing import Optional

import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings
from PIL import Image

COCO_SIZE = 96
ADE_SIZE = 64


def load_config(path: str) -> Config:
    """The config at ``path``, its custom imports done and its default
    scope set."""
    cfg = Config.fromfile(path)
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    return cfg


def write_coco(root: Path, size: int = COCO_SIZE):
    """Two random images with a white box each, in COCO's layout under
    ``root``: images/ and ann.json (one category)."""
    (root / 'images').mkdir()
    rng = np.random.default_rng(0)
    images, annotations = [], []
    for i in range(2):
        name = f'{i}.jpg'
        pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        x, y, w, h = 20 + 10 * i, 16, 40, 48
        pixels[y:y + h, x:x + w] = 255
        Image.fromarray(pixels).save(root / 'images' / name)
        images.append(dict(id=i, file_name=name, width=size, height=size))
        annotations.append(
            dict(id=i,
                 image_id=i,
                 category_id=1,
                 bbox=[x, y, w, h],
                 area=w * h,
                 iscrowd=0,
                 segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]]))
    (root / 'ann.json').write_text(
        json.dumps(
            dict(images=images,
                 annotations=annotations,
                 categories=[dict(id=1, name='person')])))


def write_ade(root: Path, size: int = ADE_SIZE):
    """Two random images and their label maps (three classes), in ADE20K's
    layout under ``root``."""
    rng = np.random.default_rng(0)
    for sub in ('images/training', 'annotations/training'):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (size, size, 3),
                                     dtype=np.uint8)).save(
                                         root / f'images/training/{i}.jpg')
        labels = np.zeros((size, size), dtype=np.uint8)
        labels[:, size // 2:] = 1 + i
        labels[size // 2:] = 7
        Image.fromarray(labels).save(root / f'annotations/training/{i}.png')


def replace_type(cfg, old: str, new: str):
    """Set ``type=new`` wherever ``cfg`` (nested dicts and lists) has
    ``type=old``."""
    if isinstance(cfg, dict):
        if cfg.get('type') == old:
            cfg['type'] = new
        for value in cfg.values():
            replace_type(value, old, new)
    elif isinstance(cfg, list):
        for value in cfg:
            replace_type(value, old, new)


def tiny_run_config(path: str,
                    root: Path,
                    checkpoint: Optional[str] = None,
                    iters: int = 1) -> Config:
    """The config at ``path`` on a tiny dataset written to ``root``, for
    ``iters`` training iterations of 2 images, without evaluation or
    checkpoint saving. The backbone loads ``checkpoint``; None starts it
    from its initialisation."""
    cfg = load_config(path)
    cfg.work_dir = str(root / 'work_dir')
    if checkpoint is None:
        cfg.model.backbone.init_cfg = None
    else:
        cfg.model.backbone.init_cfg.checkpoint = checkpoint
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    if cfg.default_scope == 'mmseg':
        write_ade(root)
        loader.dataset.update(data_root=str(root))
        for step in loader.dataset.pipeline:
            if step.type == 'RandomResize':
                step.update(scale=(ADE_SIZE, ADE_SIZE), ratio_range=(1., 1.))
            if step.type == 'RandomCrop':
                step.crop_size = (ADE_SIZE, ADE_SIZE)
        cfg.model.data_preprocessor.size = (ADE_SIZE, ADE_SIZE)
        # one process on CPU: plain BN instead of SyncBN
        replace_type(cfg.model, 'SyncBN', 'BN')
    else:
        write_coco(root)
        loader.dataset.update(data_root=str(root),
                              ann_file='ann.json',
                              data_prefix=dict(img='images/'))
        for step in loader.dataset.pipeline:
            if step.type == 'Resize':
                step.scale = (COCO_SIZE, COCO_SIZE)
    # MMDetection's schedules count epochs (of one iteration here),
    # MMSegmentation's iterations
    cfg.train_cfg = (dict(type='IterBasedTrainLoop', max_iters=iters)
                     if cfg.default_scope == 'mmseg' else dict(
                         type='EpochBasedTrainLoop', max_epochs=iters))
    for stage in ('val', 'test'):
        cfg[f'{stage}_dataloader'] = cfg[f'{stage}_cfg'] = None
        cfg[f'{stage}_evaluator'] = None
    cfg.default_hooks.checkpoint = None
    # a visualizer of the run's own: the configs' is a singleton by name,
    # which a later run in the process would find writing to this work_dir
    cfg.visualizer.pop('name', None)
    cfg.log_level = 'WARNING'
    return cfg
