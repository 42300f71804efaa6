from .authors_checkpoints import (AuthorsNetwork, authors_state_dict,
                                  convert_authors_checkpoint,
                                  convert_authors_state, detect_network,
                                  read_authors_checkpoint, run_converter)
from .authors_networks import dcd_network, kw_network, odconv_network
from .dynamic_to_kr import convert_dynamic_to_kr
from .static_to_kr import convert_static_to_kr, neutral_factors

__all__ = [
    'AuthorsNetwork', 'authors_state_dict', 'convert_authors_checkpoint',
    'convert_authors_state', 'convert_dynamic_to_kr', 'convert_static_to_kr',
    'dcd_network', 'detect_network', 'kw_network', 'neutral_factors',
    'odconv_network',
    'read_authors_checkpoint', 'run_converter'
]
