"""Train a model from an mmkr (or any mmpretrain) config.

Follows mmpretrain's ``tools/train.py``; in addition it imports mmkr (its
modules and its weights-only checkpoint loader) and, under
``--launcher pytorch`` on a machine without CUDA, runs the job on the gloo
backend (see :func:`mmkr.utils.init_cpu_distributed`), and ``--amp``
without CUDA trains under bfloat16 autocast
(:class:`mmkr.engine.CPUAmpOptimWrapper`).

With mmkr's runtime (``configs/_base_/default_runtime.py``) a SIGTERM saves
the state after the current iteration and ends the process with exit code 75
(:data:`mmkr.engine.PREEMPTED_EXIT_CODE`), and ``--resume`` continues from
the checkpoint with the most progress that loads (docs/preemption.md). A
work dir belongs to one run at a time (:class:`mmkr.utils.WorkDirLock`),
and a wrong model option is refused before the work dir is made.
"""
import argparse
import os
import sys
import os.path as osp
from copy import deepcopy

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmkr  # noqa: F401  (registers mmkr's modules and checkpoint loader)
from mmkr.utils import (WorkDirBusyError, check_model_config,
                        init_cpu_distributed, lock_for_run)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory (with mmkr\'s runtime: the one with the most '
        'training done that loads; broken ones are skipped with a warning).')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training (float16 with '
        'loss scaling on CUDA, bfloat16 on CPU)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='whether not to evaluate the checkpoint during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='whether to auto scale the learning rate according to the '
        'actual batch size and the original batch size.')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='whether to disable the pin_memory option in dataloaders.')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='whether to disable the persistent_workers option in dataloaders.'
    )
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch >= 2.0 launchers pass `--local-rank` instead of `--local_rank`
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def merge_args(cfg, args):
    """Merge CLI arguments to config."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    cfg.launcher = args.launcher

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp and torch.cuda.is_available():
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    elif args.amp:
        # mmengine's AmpOptimWrapper needs CUDA; bfloat16 needs no scaler
        cfg.optim_wrapper.type = 'CPUAmpOptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True

    def set_default_dataloader_cfg(cfg, field):
        if cfg.get(field, None) is None:
            return
        dataloader_cfg = ConfigDict(
            pin_memory=torch.cuda.is_available(),
            collate_fn=dict(type='default_collate'))
        dataloader_cfg.update(deepcopy(cfg[field]))
        # a DataLoader without worker processes cannot keep them alive
        if dataloader_cfg.get('num_workers', 0) > 0:
            dataloader_cfg.setdefault('persistent_workers', True)
        cfg[field] = dataloader_cfg
        if args.no_pin_memory:
            cfg[field]['pin_memory'] = False
        if args.no_persistent_workers:
            cfg[field]['persistent_workers'] = False

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # after --cfg-options, which may change num_workers
    set_default_dataloader_cfg(cfg, 'train_dataloader')
    set_default_dataloader_cfg(cfg, 'val_dataloader')
    set_default_dataloader_cfg(cfg, 'test_dataloader')

    return cfg


def train(cfg):
    init_cpu_distributed(cfg)
    if 'runner_type' not in cfg:
        runner = Runner.from_cfg(cfg)
    else:
        runner = RUNNERS.build(cfg)
    runner.train()


def main():
    args = parse_args()
    cfg = merge_args(Config.fromfile(args.config), args)
    # refused before the runner makes the work dir and its log folder
    try:
        check_model_config(cfg.model)
    except (TypeError, ValueError) as error:
        sys.exit(f'{args.config}: {error}')
    try:
        with lock_for_run(cfg.work_dir, args.launcher):
            train(cfg)
    except WorkDirBusyError as error:
        sys.exit(f'{args.config}: {error}')


if __name__ == '__main__':
    main()
