"""Epoch-based training that resumes inside an epoch as if never stopped."""
import itertools
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Tuple

from mmengine.dist import get_rank, get_world_size
from mmengine.registry import LOOPS
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import BatchSampler, DataLoader, Sampler

from .random_state import restore_random_state, seed_epoch

# The message hub entry (saved in every checkpoint) that
# PreemptibleCheckpointHook writes before each checkpoint and this loop
# reads on resume: the random states of every rank and the number of
# batches per epoch at that moment.
RESUME_STATE = 'resume_state'


class _SkipFirst(Sampler):
    """The indices of ``sampler`` after its first ``count``.

    Its length stays the whole sampler's, so the DataLoader's length, which
    the loggers print as ``[epoch][batch/length]``, still counts the epoch.
    """

    def __init__(self, sampler: Sampler, count: int):
        self.sampler = sampler
        self.count = count

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(iter(self.sampler), self.count, None)

    def __len__(self) -> int:
        return len(self.sampler)


@contextmanager
def batches_after(dataloader: DataLoader, done: int) -> Iterator[Iterator]:
    """An iterator over ``dataloader``'s batches of this epoch after its
    first ``done`` ones.

    With PyTorch's own BatchSampler (what a DataLoader built from a batch
    size has) the skipped batches' indices are dropped before any data is
    loaded; any other batch sampler may group indices in its own way, so its
    first ``done`` batches are loaded and dropped. The BatchSampler gets its
    own sampler back on exit.
    """
    batch_sampler = dataloader.batch_sampler
    if done == 0 or type(batch_sampler) is not BatchSampler:
        batches = iter(dataloader)
        for _ in range(done):
            next(batches)
        yield batches
        return
    sampler = batch_sampler.sampler
    # BatchSampler reads its sampler when the first batch is drawn, so the
    # substitute stays until the epoch is over
    batch_sampler.sampler = _SkipFirst(sampler,
                                       done * batch_sampler.batch_size)
    try:
        yield iter(dataloader)
    finally:
        batch_sampler.sampler = sampler


def drop_batch_of_one(dataloader: DataLoader) -> bool:
    """Drop the last batch of every epoch where it would hold one sample.

    BatchNorm cannot normalise one sample in training (the attention trunks
    of ODConv and DCD, and any 1x1 feature map, see one value per channel),
    so an epoch whose last batch is a single sample would crash there, at
    its very end. Only that batch is dropped (``drop_last`` of PyTorch's
    BatchSampler, which here drops nothing else); other incomplete last
    batches are trained, as mmengine does. Returns whether it dropped.
    """
    batch_sampler = dataloader.batch_sampler
    if (type(batch_sampler) is not BatchSampler or batch_sampler.drop_last
            or batch_sampler.batch_size < 2):
        return False
    samples = len(batch_sampler.sampler)
    if samples < 2 or samples % batch_sampler.batch_size != 1:
        return False
    batch_sampler.drop_last = True
    return True


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` (same arguments), resumable
    inside an epoch so that the resumed run trains exactly as the
    uninterrupted one would have.

    mmengine restarts a resumed epoch from its first batch and continues the
    random generators from wherever the resumed process left them. Here:

    - every epoch seeds the random generators from the run's seed and the
      epoch (:func:`~.random_state.seed_epoch`) once its DataLoader iterator
      exists, so an epoch does not depend on what ran before it;
    - a run resumed from a checkpoint taken after batch ``k`` of an epoch
      (PreemptibleCheckpointHook's checkpoint on SIGTERM, or an iteration
      checkpoint) continues that epoch at batch ``k + 1`` of the same
      sampler order, skipping the consumed batches without loading them,
      with the random states of every rank restored as they were at the
      checkpoint.

    What it cannot restore: the random state of DataLoader worker processes
    (random augmentation running in workers draws other numbers after a
    resume inside an epoch; the batches hold the same samples). A resume
    inside an epoch needs the batches per epoch and the number of processes
    of the run that saved it; with others, the epoch restarts from its first
    batch, as in mmengine, with a warning.

    The last batch of an epoch is dropped where it would hold a single
    sample per process (:func:`drop_batch_of_one`), with a line in the log.
    """

    def __init__(self, runner, dataloader, *args, **kwargs):
        super().__init__(runner, dataloader, *args, **kwargs)
        if drop_batch_of_one(self.dataloader):
            self._max_iters = self._max_epochs * len(self.dataloader)
            sampler = self.dataloader.batch_sampler
            runner.logger.info(
                f'The last training batch of each epoch would hold 1 of the '
                f'{len(sampler.sampler)} samples of a process (batch_size='
                f'{sampler.batch_size}), which BatchNorm cannot normalise in '
                f'training: it is dropped ({len(self.dataloader)} batches '
                'per epoch).')

    def run(self) -> Any:
        self._resume_at = self._resume_point()
        return super().run()

    def _resume_point(self) -> Optional[Tuple[int, Optional[dict]]]:
        """(batches of the current epoch already trained, random state to
        continue with) when resuming inside an epoch; None at an epoch's
        start."""
        state = self.runner.message_hub.get_info(RESUME_STATE)
        batches_per_epoch = (state['batches_per_epoch']
                             if state else len(self.dataloader))
        done = self._iter - self._epoch * batches_per_epoch
        if done == 0:
            return None
        here = (len(self.dataloader), get_world_size())
        saved = (batches_per_epoch,
                 len(state['random_states'])) if state else None
        if saved != here or not 0 < done <= batches_per_epoch:
            self.runner.logger.warning(
                f'The checkpoint was saved at iteration {self._iter} in '
                f'epoch {self._epoch + 1}, but its batches per epoch and '
                f'processes ({saved or "not recorded"}) are not this run\'s '
                f'{here}: epoch {self._epoch + 1} restarts from its first '
                'batch, and batches already trained in it are trained '
                'again.')
            return None
        self.runner.logger.info(
            f'Resuming epoch {self._epoch + 1} after its first {done} of '
            f'{batches_per_epoch} batches (skipped without loading them), '
            'with the random states of the checkpoint.')
        return done, state['random_states'][get_rank()]

    def run_epoch(self) -> None:
        """Iterate one epoch (the rest of it, after a resume inside it)."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        done, random_state = self._resume_at or (0, None)
        self._resume_at = None
        with batches_after(self.dataloader, done) as batches:
            # after the iterator exists: creating it draws from torch's
            # generator
            if random_state is None:
                seed_epoch(self.runner.seed, self._epoch)
            else:
                restore_random_state(random_state)
            for idx, data_batch in enumerate(batches, start=done):
                self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
