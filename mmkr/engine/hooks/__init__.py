from .attention_stats_hook import AttentionStatsHook
from .preemptible_checkpoint_hook import PreemptibleCheckpointHook
from .temperature_hook import KRTemperatureHook

__all__ = [
    'AttentionStatsHook', 'KRTemperatureHook', 'PreemptibleCheckpointHook'
]
