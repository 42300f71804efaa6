from .flops import (FLOP_CONVENTIONS, KR_FLOP_HANDLES, OTHER_CONVENTIONS,
                    candidate_weights, count_flops, count_params,
                    explain_overhead, flop_analyzer, kr_parts)

__all__ = [
    'FLOP_CONVENTIONS', 'KR_FLOP_HANDLES', 'OTHER_CONVENTIONS',
    'candidate_weights', 'count_flops', 'count_params', 'explain_overhead',
    'flop_analyzer', 'kr_parts'
]
