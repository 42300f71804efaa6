from .static_to_kr import convert_static_to_kr, neutral_factors

__all__ = ['convert_static_to_kr', 'neutral_factors']
