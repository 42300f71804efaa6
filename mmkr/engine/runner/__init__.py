from .random_state import (capture_random_state, restore_random_state,
                           seed_epoch)
from .resumable_loop import ResumableEpochBasedTrainLoop
from .resumable_runner import ResumableRunner
from .resume_checkpoint import (check_resume_path, latest_complete_checkpoint,
                                why_not_resumable)

__all__ = [
    'ResumableEpochBasedTrainLoop', 'ResumableRunner', 'capture_random_state',
    'check_resume_path', 'latest_complete_checkpoint', 'restore_random_state',
    'seed_epoch', 'why_not_resumable'
]
