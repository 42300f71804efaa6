from .temperature_hook import KRTemperatureHook

__all__ = ['KRTemperatureHook']
