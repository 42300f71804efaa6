"""mmengine's Runner with a resume that checks before it trusts."""
import logging
import sys
from typing import Dict, Union

import torch
from mmengine.registry import RUNNERS
from mmengine.runner import BaseLoop, EpochBasedTrainLoop, Runner

from mmkr.utils import check_model_config
from mmkr.utils.validation import check_int

from .resumable_loop import ResumableEpochBasedTrainLoop
from .resume_checkpoint import check_resume_path, latest_complete_checkpoint


@RUNNERS.register_module()
class ResumableRunner(Runner):
    """mmengine's ``Runner`` (same config) whose resume survives preemption.

    - The model config is checked before the work dir is made
      (:func:`~mmkr.utils.check_model_config`).
    - ``resume=True`` without ``load_from`` (``tools/train.py --resume``)
      resumes from the first checkpoint that loads with mmkr's safe loader:
      the one ``last_checkpoint`` names, else the ``epoch_N.pth`` /
      ``iter_N.pth`` with the most training done (the iteration stored in
      it); each broken one is skipped with a warning naming it and the
      reason. With none, training starts from scratch.
    - ``resume=True`` with ``load_from`` (``--resume PATH``) fails on a
      broken file with a message naming it and the last complete checkpoint
      of its folder (:class:`~mmkr.utils.CheckpointIntegrityError`).
    - Epoch-based training (``train_cfg=dict(by_epoch=True, ...)``, or
      ``type='EpochBasedTrainLoop'``) runs
      :class:`~mmkr.engine.ResumableEpochBasedTrainLoop`, which resumes
      inside an epoch exactly.
    - ``env_cfg=dict(torch_num_threads=N)`` runs torch on N CPU threads.
      The thread count changes how a CPU splits its sums, and so the
      numbers a run ends with: a config that fixes it (the demo recipe)
      gives the same figures on machines with the same vector instructions,
      whatever their number of cores.
    - An error that stops training (a failed checkpoint save, say) is
      written with its traceback to the run's log file too, not only to
      the terminal.

    Select it with ``runner_type = 'ResumableRunner'`` (mmkr's
    ``configs/_base_/default_runtime.py`` does).
    """

    def __init__(self, model, *args, **kwargs):
        check_model_config(model)
        super().__init__(model, *args, **kwargs)

    def setup_env(self, env_cfg: Dict) -> None:
        super().setup_env(env_cfg)
        threads = env_cfg.get('torch_num_threads')
        if threads is not None:
            torch.set_num_threads(
                check_int('env_cfg', 'torch_num_threads', threads, 1))

    def train(self):
        try:
            return super().train()
        except Exception:
            self._log_to_files('Training stopped by an error:')
            raise

    def _log_to_files(self, message: str) -> None:
        """``message`` and the traceback of the error being handled, to the
        log files only: the terminal gets the traceback from Python."""
        record = self.logger.makeRecord(self.logger.name, logging.ERROR,
                                        __file__, 0, message, (),
                                        sys.exc_info())
        for handler in self.logger.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)

    def build_train_loop(self, loop: Union[BaseLoop, Dict]) -> BaseLoop:
        if isinstance(loop, dict):
            loop = dict(loop)
            if loop.get('type') in ('EpochBasedTrainLoop',
                                    EpochBasedTrainLoop):
                loop['type'] = ResumableEpochBasedTrainLoop
            elif 'type' not in loop and loop.get('by_epoch'):
                del loop['by_epoch']
                loop['type'] = ResumableEpochBasedTrainLoop
        return super().build_train_loop(loop)

    def load_or_resume(self) -> None:
        if self._has_loaded or not self._resume:
            return super().load_or_resume()
        if self._load_from is None:
            resume_from = latest_complete_checkpoint(self.work_dir,
                                                     self.logger)
            if resume_from is None:
                self.logger.info(
                    f'No complete checkpoint in {self.work_dir} to resume '
                    'from: training starts from scratch.')
                return None
            self.logger.info(f'Auto resumed from the latest complete '
                             f'checkpoint {resume_from}.')
        else:
            resume_from = self._load_from
            check_resume_path(resume_from, self.work_dir)
        self.resume(resume_from)
        self._has_loaded = True
