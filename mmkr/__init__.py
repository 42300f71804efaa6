"""mmkr: Kernel Representation dynamic convolution for OpenMMLab."""
from . import engine, models  # noqa: F401  (registers modules and hooks)
from .utils import (register_http_loader, register_local_loader,
                    register_model_index)
from .version import __version__

register_http_loader()
register_local_loader()
register_model_index()

__all__ = ['__version__']
