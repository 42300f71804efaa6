"""mmkr's models in mmpretrain's model hub.

After :func:`register_model_index` (run at ``import mmkr``),
``mmpretrain.list_models``, ``mmpretrain.get_model`` and the inferencers know
mmkr's models by name, as they know mmpretrain's own.

A model whose metafile lists no weights must not silently come back with
random weights when asked for ``pretrained=True`` (mmpretrain only warns):
its weights point to ``mmkr-untrained://<name>``, a checkpoint scheme whose
loader raises with what to do instead.
"""
import os.path as osp

from mmengine.runner import CheckpointLoader
from mmpretrain.apis import ModelHub

UNTRAINED_SCHEME = 'mmkr-untrained://'
_registered = False


def model_index_root() -> str:
    """The folder that holds ``model-index.yml`` and ``configs/``:
    ``mmkr/.mim`` in a wheel install (see setup.py), the source tree in an
    editable install or a checkout."""
    package = osp.dirname(osp.dirname(osp.abspath(__file__)))
    for root in (osp.join(package, '.mim'), osp.dirname(package)):
        if osp.isfile(osp.join(root, 'model-index.yml')):
            return root
    raise FileNotFoundError(
        f'mmkr has no model-index.yml in {package}/.mim nor in '
        f'{osp.dirname(package)}: the installation is incomplete')


def load_from_untrained(filename: str, map_location=None):
    """The loader of ``mmkr-untrained://<name>``: raises, naming the model."""
    name = filename[len(UNTRAINED_SCHEME):]
    raise ValueError(
        f'mmkr model {name!r} has no released weights yet (its Weights entry '
        'in the metafile is empty). Build it with pretrained=False, or pass '
        'pretrained=<path or URL of your own checkpoint>.')


def register_model_index() -> None:
    """Add mmkr's ``model-index.yml`` to mmpretrain's ``ModelHub`` (once)."""
    global _registered
    if _registered:
        return
    root = model_index_root()
    before = set(ModelHub._models_dict)
    ModelHub.register_model_index(
        osp.join(root, 'model-index.yml'), config_prefix=root)
    for name in set(ModelHub._models_dict) - before:
        metainfo = ModelHub._models_dict[name]
        if metainfo.weights is None:
            metainfo.weights = UNTRAINED_SCHEME + name
    CheckpointLoader.register_scheme(
        prefixes=UNTRAINED_SCHEME, loader=load_from_untrained, force=True)
    _registered = True
