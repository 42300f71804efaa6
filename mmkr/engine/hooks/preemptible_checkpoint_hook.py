"""mmengine's CheckpointHook, safe against a kill at any moment and saving
on SIGTERM."""
import os.path as osp
from typing import Any, Optional

from mmengine.dist import all_gather_object, barrier, is_main_process
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from mmkr.utils.atomic_file import remove_staged_leftovers, write_atomically
from ..preemption import (PREEMPTED_EXIT_CODE, IgnoreSigtermInWorker,
                          Preempted, SigtermFlag, record_preemption)
from ..runner.random_state import capture_random_state
from ..runner.resumable_loop import RESUME_STATE

# message hub entry: the last checkpoint written on SIGTERM, which the
# resumed run removes once a later checkpoint is complete
PREEMPTION_CKPT = 'preemption_ckpt'


class _DeferredRemovals:
    """Stands in for a file backend and only notes what it is asked to
    remove; everything else goes to ``backend``."""

    def __init__(self, backend):
        self._backend = backend
        self.paths = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def remove(self, path: str) -> None:
        self.paths.append(path)

    def rmtree(self, path: str) -> None:
        self.paths.append(path)


@HOOKS.register_module()
class PreemptibleCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments, same files) made safe
    against a kill at any moment, and saving on SIGTERM.

    - Every checkpoint it writes (periodic, best, last, on SIGTERM) is
      staged next to its final name, flushed, fsynced and renamed into
      place (:class:`~mmkr.utils.atomic_file.AtomicLocalBackend`; a
      ``backend_args`` of the config chooses another storage). A kill
      leaves the old file or the complete new one, never a part.
    - ``last_checkpoint`` is replaced the same way, after the checkpoint it
      names is complete. It names the checkpoint relative to the work dir
      where the checkpoint is in it, so a moved or copied work dir resumes
      from its own files; the paths a resumed state recorded (best
      checkpoint, last checkpoint) are taken to be in this run's folder.
    - A checkpoint whose save fails (a full disk: ``OSError``) leaves no
      file behind: the staged file goes, and so does a best checkpoint that
      no complete checkpoint records yet. The run stops with the error.
    - A checkpoint that leaves the ``max_keep_ckpts`` window, the previous
      best checkpoint and a superseded SIGTERM checkpoint are removed only
      after their successor (and ``last_checkpoint``) is complete; mmengine
      removes them first.
    - Staged files left by a killed write are removed when training starts.
    - On SIGTERM (which DataLoader workers ignore, see
      :class:`~mmkr.engine.preemption.IgnoreSigtermInWorker`) the training
      iteration in progress finishes; once every rank has seen the signal
      (checked after each training iteration: a validation in progress runs
      to its end first), the state after that iteration is saved as
      ``iter_{N}.pth`` (N iterations done), ``last_checkpoint`` names it,
      and the run raises
      :class:`~mmkr.engine.Preempted`: exit code 75
      (:data:`~mmkr.engine.PREEMPTED_EXIT_CODE`). ``--resume`` continues
      from it (inside the epoch, with ResumableRunner's loop); it is removed
      once the next regular checkpoint is complete.
    - Every checkpoint records the random states of all ranks and the
      batches per epoch, which a resume inside an epoch needs
      (:class:`~mmkr.engine.ResumableEpochBasedTrainLoop`).
    """

    priority = 'VERY_LOW'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sigterm = SigtermFlag()

    def before_train(self, runner) -> None:
        out_dir = self.out_dir or runner.work_dir
        if (self.backend_args is None and self.file_client_args is None
                and type(get_file_backend(out_dir)) is LocalBackend):
            self.backend_args = dict(backend='atomic_local')
        super().before_train(runner)
        self._rebase_recorded_paths(runner)
        if is_main_process():
            for folder in {self.out_dir, runner.work_dir}:
                for path in remove_staged_leftovers(folder):
                    runner.logger.info(
                        f'Removed {path}, left by a checkpoint write that '
                        'was killed.')
        try:
            self._sigterm.install()
        except ValueError:  # not the main thread
            runner.logger.warning(
                'Training runs outside the main thread, where Python cannot '
                'handle signals: SIGTERM kills it without a checkpoint.')
            return
        # no worker has started yet: they start with the first iteration
        loops = (runner.train_loop, runner.val_loop)
        for loader in (loop.dataloader for loop in loops if loop is not None):
            if not isinstance(loader.worker_init_fn, IgnoreSigtermInWorker):
                loader.worker_init_fn = IgnoreSigtermInWorker(
                    loader.worker_init_fn)

    def _rebase_recorded_paths(self, runner) -> None:
        """Point the checkpoint paths a resumed state recorded at this run's
        folder: they name the folder the state was saved in, and a copy of a
        work dir must not remove the original's best checkpoint."""

        def rebase(path):
            if path is None or '://' in path:
                return path
            return self.file_backend.join_path(self.out_dir,
                                               osp.basename(path))

        hub = runner.message_hub
        for key in list(hub.runtime_info):
            if key in ('best_ckpt', 'last_ckpt', PREEMPTION_CKPT) or \
                    key.startswith('best_ckpt_'):
                hub.update_info(key, rebase(hub.get_info(key)))
        if getattr(self, 'best_ckpt_path', None) is not None:
            self.best_ckpt_path = rebase(self.best_ckpt_path)
        for key, path in getattr(self, 'best_ckpt_path_dict', {}).items():
            self.best_ckpt_path_dict[key] = rebase(path)

    def after_train(self, runner) -> None:
        super().after_train(runner)
        self._sigterm.uninstall()

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        if self._sigterm.received_by_any_rank():
            self._save_and_stop(runner)

    def _save_and_stop(self, runner) -> None:
        """Save the state after this iteration as ``iter_{N}.pth`` and
        raise :class:`Preempted` once every rank knows it is complete."""
        step = runner.iter + 1
        filename = f'iter_{step}.pth'
        path = self.file_backend.join_path(self.out_dir, filename)
        # an iteration-based hook may just have saved this very iteration
        if self.last_ckpt != path:
            self._write(runner,
                        filename,
                        dict(epoch=runner.epoch, iter=step),
                        on_sigterm=True)
        # no rank leaves before the file is complete: torchrun stops all
        # workers as soon as one exits
        barrier()
        runner.logger.info(
            f'SIGTERM: saved the state after iteration {step} to {path}; '
            f'stopping with exit code {PREEMPTED_EXIT_CODE} (preempted). '
            'Resume with tools/train.py CONFIG --resume.')
        record_preemption(path)
        raise Preempted(path)

    def _write(self,
               runner,
               filename: str,
               meta: dict,
               on_sigterm: bool = False) -> None:
        """Write checkpoint ``filename`` (staged, then renamed into place),
        then ``last_checkpoint`` naming it, then remove the SIGTERM
        checkpoint it supersedes. Called on every rank."""
        superseded = runner.message_hub.pop_info(PREEMPTION_CKPT)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        if on_sigterm:
            runner.message_hub.update_info(PREEMPTION_CKPT, self.last_ckpt)
        runner.message_hub.update_info(
            RESUME_STATE,
            dict(random_states=all_gather_object(capture_random_state()),
                 batches_per_epoch=len(runner.train_dataloader)))
        runner.save_checkpoint(self.out_dir,
                               filename,
                               self.file_client_args,
                               save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler,
                               meta=meta,
                               by_epoch=self.by_epoch,
                               backend_args=self.backend_args,
                               **self.args)
        if is_main_process():
            name = self.last_ckpt
            if '://' not in name and osp.dirname(
                    osp.abspath(name)) == osp.abspath(runner.work_dir):
                name = osp.basename(name)
            write_atomically(osp.join(runner.work_dir, 'last_checkpoint'),
                             lambda f: f.write(name.encode()))
            if superseded not in (None, self.last_ckpt):
                self._remove(superseded)

    def _remove(self, path: str) -> None:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(path)

    def _best_paths(self) -> set:
        paths = set(getattr(self, 'best_ckpt_path_dict', {}).values())
        paths.add(getattr(self, 'best_ckpt_path', None))
        return paths - {None}

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """mmengine's bookkeeping of ``max_keep_ckpts``, but the checkpoint
        leaving the window is removed after this one and
        ``last_checkpoint`` are complete."""
        expired = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                            self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                expired.append(
                    self.file_backend.join_path(
                        self.out_dir,
                        self.filename_tmpl.format(
                            self.keep_ckpt_ids.popleft())))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))
        self._write(runner, self.filename_tmpl.format(step), meta)
        if is_main_process():
            for path in expired:
                self._remove(path)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's, but the previous best checkpoint is removed after the
        new best (and the checkpoint saved again with it) is complete."""
        backend = self.file_backend
        self.file_backend = _DeferredRemovals(backend)
        previous = self._best_paths()
        try:
            super()._save_best_checkpoint(runner, metrics)
            removals = self.file_backend.paths
        except Exception:
            # the checkpoint that records the new best was not written: a
            # new best file would be an orphan that no resume knows of
            if is_main_process():
                for path in self._best_paths() - previous:
                    if backend.isfile(path):
                        backend.remove(path)
            raise
        finally:
            self.file_backend = backend
        for path in removals:  # mmengine asked on the main process only
            self._remove(path)
