from .hooks import KRTemperatureHook

__all__ = ['KRTemperatureHook']
