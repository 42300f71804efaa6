"""mmengine's Runner with a resume that checks before it trusts."""
from typing import Dict, Union

from mmengine.registry import RUNNERS
from mmengine.runner import BaseLoop, EpochBasedTrainLoop, Runner

from .resumable_loop import ResumableEpochBasedTrainLoop
from .resume_checkpoint import check_resume_path, latest_complete_checkpoint


@RUNNERS.register_module()
class ResumableRunner(Runner):
    """mmengine's ``Runner`` (same config) whose resume survives preemption.

    - ``resume=True`` without ``load_from`` (``tools/train.py --resume``)
      resumes from the newest checkpoint that loads with mmkr's safe loader:
      the one ``last_checkpoint`` names, else the newest ``epoch_N.pth`` /
      ``iter_N.pth``; each broken one is skipped with a warning naming it
      and the reason. With none, training starts from scratch.
    - ``resume=True`` with ``load_from`` (``--resume PATH``) fails on a
      broken file with a message naming it and the last complete checkpoint
      of its folder (:class:`~mmkr.utils.CheckpointIntegrityError`).
    - Epoch-based training (``train_cfg=dict(by_epoch=True, ...)``, or
      ``type='EpochBasedTrainLoop'``) runs
      :class:`~mmkr.engine.ResumableEpochBasedTrainLoop`, which resumes
      inside an epoch exactly.

    Select it with ``runner_type = 'ResumableRunner'`` (mmkr's
    ``configs/_base_/default_runtime.py`` does).
    """

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
