from .flops import (FLOP_CONVENTIONS, KR_FLOP_HANDLES, count_flops,
                    count_params, flop_analyzer)

__all__ = [
    'FLOP_CONVENTIONS', 'KR_FLOP_HANDLES', 'count_flops', 'count_params',
    'flop_analyzer'
]
