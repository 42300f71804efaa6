from .atomic_file import AtomicLocalBackend, write_atomically
from .checkpoint import (MMENGINE_CHECKPOINT_GLOBALS, load_from_local,
                         load_training_checkpoint, register_local_loader)
from .download import (CheckpointIntegrityError, cached_download,
                       load_from_http, load_weights, register_http_loader)
from .launcher import init_cpu_distributed
from .model_index import register_model_index
from .publish import publish_checkpoint, strip_training_state
from .validation import check_model_config
from .work_dir_lock import WorkDirBusyError, WorkDirLock, lock_for_run

__all__ = [
    'AtomicLocalBackend', 'MMENGINE_CHECKPOINT_GLOBALS',
    'CheckpointIntegrityError',
    'cached_download', 'init_cpu_distributed', 'load_from_http',
    'load_from_local', 'load_training_checkpoint', 'load_weights',
    'publish_checkpoint',
    'register_http_loader', 'register_local_loader', 'register_model_index',
    'strip_training_state', 'write_atomically', 'check_model_config',
    'WorkDirBusyError', 'WorkDirLock', 'lock_for_run'
]
