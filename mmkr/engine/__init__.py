from .hooks import (AttentionStatsHook, KRTemperatureHook,
                    PreemptibleCheckpointHook)
from .optimizers import CPUAmpOptimWrapper
from .preemption import PREEMPTED_EXIT_CODE, Preempted
from .runner import ResumableEpochBasedTrainLoop, ResumableRunner

__all__ = [
    'AttentionStatsHook', 'KRTemperatureHook', 'CPUAmpOptimWrapper',
    'PREEMPTED_EXIT_CODE', 'Preempted', 'PreemptibleCheckpointHook',
    'ResumableEpochBasedTrainLoop', 'ResumableRunner'
]
