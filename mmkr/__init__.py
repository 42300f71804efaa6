"""mmkr: Kernel Representation dynamic convolution for OpenMMLab."""
from . import engine, models  # noqa: F401  (registers modules and hooks)
from .version import __version__

__all__ = ['__version__']
