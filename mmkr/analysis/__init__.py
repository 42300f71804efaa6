from .flops import (FLOP_CONVENTIONS, KR_FLOP_HANDLES, OTHER_CONVENTIONS,
                    candidate_weights, count_flops, count_params,
                    explain_overhead, flop_analyzer, kr_parts)
from .init_stats import (GroupStats, compare_statistics, init_statistics,
                         parameter_groups, relative_sampling_error)

__all__ = [
    'FLOP_CONVENTIONS', 'KR_FLOP_HANDLES', 'OTHER_CONVENTIONS',
    'candidate_weights', 'count_flops', 'count_params', 'explain_overhead',
    'flop_analyzer', 'kr_parts', 'GroupStats', 'compare_statistics',
    'init_statistics', 'parameter_groups', 'relative_sampling_error'
]
