from .hooks import KRTemperatureHook
from .optimizers import CPUAmpOptimWrapper

__all__ = ['KRTemperatureHook', 'CPUAmpOptimWrapper']
