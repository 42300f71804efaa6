"""Read the comparison methods' own ImageNet checkpoints as mmkr models.

ODConv's and DCD's authors release the checkpoints of their training
scripts: ``{'state_dict': ...}`` (often with DDP's ``module.`` prefix, often
with ``epoch``, ``best_acc1`` and the optimizer beside it) of their own
networks; KernelWarehouse's authors those of ConvNeXt's training script,
``{'model': ..., 'model_ema': ... (with EMA), 'optimizer': ..., 'epoch': ...,
'args': Namespace}``. Every tensor of such a file has one place in the mmkr
model of the same network, given by an explicit key map:

- the *module map* (:class:`ModuleMap`) pairs each module of the authors'
  network with the mmkr module it became, by name, and says what kind of
  module the authors wrote (a static layer, an ``ODConv2d``, a DCD
  ``conv_basic_dy`` ...);
- the *tensor map* of that kind (:data:`TENSOR_MAPS`) pairs each tensor of
  the authors' module with the mmkr tensor it becomes, e.g. ODConv's
  ``attention.channel_fc.weight`` (a 1x1 conv, (C_in, A, 1, 1)) with
  ``generator.heads.channel.weight`` (a linear map, (C_in, A));
- KernelWarehouse's warehouses, kept by the authors' ``warehouse_manager``
  in the order they created them, are paired with mmkr's by name
  (:attr:`AuthorsNetwork.warehouses`).

A conversion uses every tensor of the file and fills every tensor of the
mmkr model except the few that the authors keep outside their state dict:
the method code mmkr records (:data:`MMKR_ONLY`) and the temperature of
ODConv and KernelWarehouse (:data:`MMKR_FILLS`), an attribute in the
authors' code that ends training at 1 (ODConv) or 0 (KernelWarehouse).
"""
import argparse
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from mmkr.utils import load_weights, publish_checkpoint

# Globals the authors' files may hold besides tensors and plain containers:
# KernelWarehouse's training script saves its argparse Namespace.
AUTHORS_GLOBALS = (argparse.Namespace, )

# mmkr tensors that no authors' file holds and that keep the mmkr model's
# value
MMKR_ONLY = ('method_code', )
# mmkr tensors of a kind of authors' module that its file does not hold,
# with the value each takes: the temperature after the authors' annealing,
# T = 1 for ODConv, τ = 0 for KernelWarehouse
MMKR_FILLS: Dict[str, Dict[str, float]] = {
    'odconv': {
        'generator.temperature': 1.0
    },
    'kw': {
        'generator.temperature': 0.0
    },
}


@dataclass(frozen=True)
class TensorRule:
    """One tensor of an authors' module and the mmkr tensor it becomes.

    ``conv_as_linear``: the authors hold a 1x1 conv, (out, in, 1, 1), where
    mmkr holds a linear map, (out, in), of the same values.
    ``per_channel``: the authors hold a per-channel scale as (1, C, 1, 1),
    mmkr as (C, ) (ConvNeXt's layer scale γ).
    """
    authors: str
    mmkr: str
    conv_as_linear: bool = False
    per_channel: bool = False

    def to_authors(self, tensor: torch.Tensor) -> torch.Tensor:
        """The authors' shape of the mmkr ``tensor``."""
        if self.conv_as_linear:
            return tensor[..., None, None]
        if self.per_channel:
            return tensor.view(1, -1, 1, 1)
        return tensor


def _bn(authors: str, mmkr: str) -> List[TensorRule]:
    """A BatchNorm's five tensors, running statistics included."""
    return [
        TensorRule(f'{authors}.{name}', f'{mmkr}.{name}')
        for name in ('weight', 'bias', 'running_mean', 'running_var',
                     'num_batches_tracked')
    ]


def _odconv_heads() -> List[TensorRule]:
    return [
        TensorRule(f'attention.{head}_fc.{p}', f'generator.heads.{head}.{p}',
                   p == 'weight')
        for head in ('channel', 'filter', 'spatial', 'kernel')
        for p in ('weight', 'bias')
    ]


def _dcd_common(q: str, p: str) -> List[TensorRule]:
    """DCD's latent path and attention, the same in every dynamic module:
    Q (``q``), P (``p``), BN_1, BN_2, the squeeze FC and its SE gate
    (``fc.0``, ``fc.1.fc.0``), Φ's and Λ's maps."""
    return [
        TensorRule(f'{q}.weight', 'q.weight'),
        TensorRule(f'{p}.weight', 'p.weight'),
        *_bn('bn1', 'bn1'),
        *_bn('bn2', 'bn2'),
        TensorRule('fc.0.weight', 'fusion.fc.weight'),
        TensorRule('fc.1.fc.0.weight', 'fusion.se.weight'),
        TensorRule('fc_phi.weight', 'generator.phi.weight'),
        TensorRule('fc_scale.weight', 'generator.scale.weight'),
    ]


# The tensor map of each kind of authors' module (names relative to the
# module). 'static' modules (nn.Conv2d, BatchNorm, nn.Linear) keep their
# tensors' names.
TENSOR_MAPS: Dict[str, List[TensorRule]] = {
    # OSVAI/ODConv modules/odconv.py, ODConv2d: kernel (K, C_out, C_in/g,
    # k, k) as mmkr's; Attention's trunk fc (1x1 conv, no bias) + bn, and
    # four heads (1x1 convs with bias), those a layer lacks left out.
    'odconv': [
        TensorRule('weight', 'weight'),
        TensorRule('attention.fc.weight', 'fusion.fc.weight', True),
        *_bn('attention.bn', 'fusion.norm'),
        *_odconv_heads(),
    ],
    # liyunsheng13/dcd resnet_dcd.py, conv_basic_dy and conv_dy: the static
    # kernel is 'conv'.
    'dcd_resnet':
    [TensorRule('conv.weight', 'weight'), *_dcd_common('q', 'p')],
    # mobilenetv2_dcd.py, DYModule: Q and P are 'conv_q' and 'conv_p'.
    'dcd_mobilenetv2':
    [TensorRule('conv.weight', 'weight'), *_dcd_common('conv_q', 'conv_p')],
    # DYCls, the dynamic classifier (mmkr's DCDClsHead): the static
    # classifier is 'cls', Q and P are 'cls_q' and 'cls_p'.
    'dcd_classifier': [
        TensorRule('cls.weight', 'fc.weight'),
        TensorRule('cls.bias', 'fc.bias'),
        *_dcd_common('cls_q', 'cls_p'),
    ],
    # OSVAI/KernelWarehouse modules/kernel_warehouse.py, KWConv2d: no kernel
    # of its own (the cells are the warehouse's); Attention's fc1 (bias
    # with LayerNorm) + norm1 is F, fc2 KG; with nonlocal_basis_ratio < 1
    # fc2 has no bias, fc3 maps the basis to the other layers' cells and
    # basis_bias is added to all. The conv's bias where it has one
    # (ConvNeXt).
    'kw': [
        TensorRule('attention.fc1.weight', 'fusion.fc.weight'),
        TensorRule('attention.fc1.bias', 'fusion.fc.bias'),
        *_bn('attention.norm1', 'fusion.norm'),
        TensorRule('attention.fc2.weight', 'generator.fc.weight'),
        TensorRule('attention.fc2.bias', 'generator.fc.bias'),
        TensorRule('attention.fc3.weight', 'generator.basis.weight'),
        TensorRule('attention.basis_bias', 'generator.basis_bias'),
        TensorRule('bias', 'bias'),
    ],
    # kw_convnext.py's Block: its layer scale, (1, C, 1, 1); the block's
    # modules have module maps of their own
    'layer_scale': [TensorRule('gamma', 'gamma', per_channel=True)],
}

# KernelWarehouse: the authors' warehouses, ``warehouse_manager.weights.{i}``
# (n, c_out, c_in, 1, 1), and mmkr's, in the backbone's WarehouseManager
AUTHORS_WAREHOUSES = 'warehouse_manager.weights'
MMKR_WAREHOUSES = 'backbone.network_state'


@dataclass(frozen=True)
class ModuleMap:
    """One module of the authors' network: its name there, the name of the
    mmkr module it became, and its kind (``'static'`` or a key of
    :data:`TENSOR_MAPS`)."""
    authors: str
    mmkr: str
    kind: str = 'static'


@dataclass(frozen=True)
class AuthorsNetwork:
    """One network of the authors' code, as found in a checkpoint.

    name: e.g. 'ODConv ResNet-18 (4x, K=4)'; config: the mmkr config of that
    network; modules: its module map, from the authors' state dict;
    warehouses (KernelWarehouse): the name in mmkr's
    :class:`~mmkr.models.layers.WarehouseManager` of each of the authors'
    warehouses, in their order (the order in which their network reserved
    them).
    """
    name: str
    config: str
    modules: Tuple[ModuleMap, ...]
    warehouses: Tuple[str, ...] = ()


def read_authors_checkpoint(path: str,
                            state_key: str = 'state_dict'
                            ) -> Dict[str, torch.Tensor]:
    """The state dict of an authors' checkpoint file (under ``state_key``,
    or the file itself where it is a bare state dict), without DDP's
    ``module.`` prefix.

    The file is read with ``torch.load(weights_only=True)``, allowing
    :data:`AUTHORS_GLOBALS` and nothing else: a file that holds another
    pickled object (a callable, a class) is refused unread, as is one that
    is truncated, not a checkpoint or without ``state_key``
    (:func:`mmkr.utils.load_weights`).
    """
    with torch.serialization.safe_globals(list(AUTHORS_GLOBALS)):
        checkpoint = load_weights(path,
                                  map_location='cpu',
                                  state_key=state_key)
    state = checkpoint.get(state_key, checkpoint)
    if all(key.startswith('module.') for key in state):
        state = {key[len('module.'):]: value for key, value in state.items()}
    return dict(state)


def tensor_rules(module: ModuleMap,
                 mmkr_module: nn.Module) -> List[TensorRule]:
    """Full-name rules of one module pair: a static module keeps its
    tensors' names; another kind follows its :data:`TENSOR_MAPS` entry,
    limited to the tensors the mmkr module has (an ODConv layer without a
    kernel head, ...)."""
    own = set(mmkr_module.state_dict())
    if module.kind == 'static':
        rules = [TensorRule(name, name) for name in own]
    else:
        rules = [r for r in TENSOR_MAPS[module.kind] if r.mmkr in own]
    return [
        replace(r,
                authors=f'{module.authors}.{r.authors}',
                mmkr=f'{module.mmkr}.{r.mmkr}') for r in rules
    ]


def key_map(network: AuthorsNetwork, model: nn.Module) -> List[TensorRule]:
    """Every tensor rule of ``network`` for the mmkr ``model`` of its
    config."""
    rules = []
    for module in network.modules:
        try:
            mmkr_module = model.get_submodule(module.mmkr)
        except AttributeError:
            raise ValueError(
                f'{network.config} has no module {module.mmkr} for the '
                f'checkpoint\'s {module.authors}: the checkpoint is '
                f'{network.name}, whose config is a different network'
            ) from None
        rules += tensor_rules(module, mmkr_module)
    return rules + warehouse_rules(network, model)


def warehouse_rules(network: AuthorsNetwork,
                    model: nn.Module) -> List[TensorRule]:
    """The rule of each of the authors' warehouses: theirs in their order,
    mmkr's by name (:attr:`AuthorsNetwork.warehouses`)."""
    if not network.warehouses:
        return []
    try:
        names = model.get_submodule(MMKR_WAREHOUSES).names
    except AttributeError:  # no KernelWarehouse backbone
        names = []
    rules = []
    for index, name in enumerate(network.warehouses):
        if name not in names:
            raise ValueError(
                f'{network.config} has no warehouse {name!r} for the '
                f"checkpoint's {AUTHORS_WAREHOUSES}.{index} (its "
                f'warehouses: {names}): the checkpoint is {network.name}, '
                'whose config is a different network')
        rules.append(
            TensorRule(f'{AUTHORS_WAREHOUSES}.{index}',
                       f'{MMKR_WAREHOUSES}.warehouses.{names.index(name)}'))
    return rules


def _is_mmkr_only(key: str) -> bool:
    return any(key == suffix or key.endswith('.' + suffix)
               for suffix in MMKR_ONLY)


def mmkr_fills(network: AuthorsNetwork) -> Dict[str, float]:
    """The mmkr tensors of ``network``'s modules that its file does not
    hold, by full name, with their values (:data:`MMKR_FILLS`)."""
    return {
        f'{module.mmkr}.{suffix}': value
        for module in network.modules
        for suffix, value in MMKR_FILLS.get(module.kind, {}).items()
    }


def convert_authors_state(
        authors: Dict[str, torch.Tensor], network: AuthorsNetwork,
        model: nn.Module) -> 'OrderedDict[str, torch.Tensor]':
    """The mmkr state dict of ``model`` (built from ``network.config``) that
    holds every tensor of the authors' state dict ``authors``.

    Raises ``ValueError`` naming the first tensors of the file that have no
    place in the model, the first model tensors the file does not fill, or
    a tensor whose shape differs.
    """
    target = model.state_dict()
    rules = key_map(network, model)
    mapped = {rule.authors for rule in rules}
    unused = [key for key in authors if key not in mapped]
    missing = [rule.authors for rule in rules if rule.authors not in authors]
    if unused or missing:
        raise ValueError(
            f'the checkpoint does not fit {network.config}: {len(unused)} '
            f'of its tensors have no place in that model (first: '
            f'{unused[:5]}) and {len(missing)} tensors of the model are not '
            f'in it (first: {missing[:5]}). {detect_hint(authors)}')
    state = OrderedDict()
    for rule in rules:
        tensor = authors[rule.authors]
        shape = target[rule.mmkr].shape
        if ((rule.conv_as_linear or rule.per_channel)
                and tensor.shape == rule.to_authors(target[rule.mmkr]).shape):
            tensor = tensor.reshape(shape)
        if tensor.shape != shape:
            raise ValueError(
                f'{rule.authors} has shape {tuple(tensor.shape)} in the '
                f'checkpoint; {rule.mmkr} of {network.config} has '
                f'{tuple(shape)}')
        state[rule.mmkr] = tensor.clone()
    fills = mmkr_fills(network)
    for key, value in target.items():
        if key in state:
            continue
        if key in fills:
            state[key] = torch.full_like(value, fills[key])
        elif _is_mmkr_only(key):
            state[key] = value.clone()
        else:
            raise ValueError(f'{network.config} has {key}, which no tensor '
                             'of the checkpoint fills')
    return OrderedDict((key, state[key]) for key in target)


def authors_state_dict(mmkr_state: Dict[str,
                                        torch.Tensor], network: AuthorsNetwork,
                       model: nn.Module) -> Dict[str, torch.Tensor]:
    """The inverse map: the authors' state dict of an mmkr state dict of
    ``network`` (tensors in the authors' shapes and names)."""
    return {
        rule.authors: rule.to_authors(mmkr_state[rule.mmkr]).clone()
        for rule in key_map(network, model)
    }


# Set by each method's module: functions that name the network of an
# authors' state dict, or None where it is not theirs.
DETECTORS: List[Callable[[Dict[str, torch.Tensor]],
                         Optional[AuthorsNetwork]]] = []


def detect_network(
        authors: Dict[str, torch.Tensor]) -> Optional[AuthorsNetwork]:
    """The authors' network whose checkpoint ``authors`` is, if any."""
    for detector in DETECTORS:
        network = detector(authors)
        if network is not None:
            return network
    return None


def detect_hint(authors: Dict[str, torch.Tensor]) -> str:
    """A sentence saying which network the state dict looks like."""
    try:
        network = detect_network(authors)
    except ValueError as error:  # a known network of an unknown size
        return f'It looks like {error}.'
    if network is None:
        return ('It looks like none of the networks the converters know '
                f'(its first tensors: {list(authors)[:3]}).')
    return f'It looks like {network.name} ({network.config}).'


def publish_converted(state: Dict[str, torch.Tensor], source: str,
                      network: AuthorsNetwork, out: str) -> str:
    """Write the converted ``state`` with publish_model's hashed naming,
    ``<out>-<sha256[:8]>.pth`` (``out`` without ``.pth``), and return the
    path."""
    stem = out[:-len('.pth')] if out.endswith('.pth') else out
    meta = dict(converted_from=osp.basename(source),
                network=network.name,
                config=network.config)
    return publish_checkpoint(dict(meta=meta, state_dict=state), stem)


def build_model(config: str) -> nn.Module:
    """The mmpretrain model of ``config``: a path, or a path relative to
    mmkr's model index (``configs/odconv/resnet18_odconv4.py``)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    from mmkr.utils.model_index import model_index_root
    path = config if osp.isfile(config) else osp.join(model_index_root(),
                                                      config)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {config} does not exist')
    init_default_scope('mmpretrain')
    return MODELS.build(Config.fromfile(path).model)


def convert_authors_checkpoint(
    path: str,
    detector: Callable[[Dict[str, torch.Tensor]], Optional[AuthorsNetwork]],
    method: str,
    config: Optional[str] = None,
    state_key: str = 'state_dict'
) -> Tuple[AuthorsNetwork, 'OrderedDict[str, torch.Tensor]']:
    """Read the state dict under ``state_key`` of ``path``
    (:func:`read_authors_checkpoint`), name its network with ``detector``
    (one of :data:`DETECTORS`, ``method`` its method's name) and convert it
    into the model of ``config`` (default: the network's own). Returns the
    network, its config set to the one used, and the mmkr state dict."""
    authors = read_authors_checkpoint(path, state_key)
    network = detector(authors)
    if network is None:
        raise ValueError(f'{path} is not a checkpoint of {method}\'s '
                         f'networks. {detect_hint(authors)}')
    if config is not None:
        network = replace(network, config=config)
    model = build_model(network.config)
    return network, convert_authors_state(authors, network, model)


def stage_blocks(authors: Dict[str, torch.Tensor], prefix: str,
                 stages: Sequence[str]) -> Tuple[int, ...]:
    """How many numbered children each ``{prefix}{stage}`` has, e.g. the
    blocks of a ResNet's layer1..layer4."""
    counts = []
    for stage in stages:
        indices = {
            int(key[len(f'{prefix}{stage}.'):].split('.')[0])
            for key in authors if key.startswith(f'{prefix}{stage}.')
        }
        counts.append(len(indices))
    return tuple(counts)


def run_converter(method: str,
                  detector: Callable[[Dict[str, torch.Tensor]],
                                     Optional[AuthorsNetwork]],
                  description: str,
                  argv: Optional[Sequence[str]] = None,
                  state_key: str = 'state_dict',
                  ema_key: Optional[str] = None) -> str:
    """The command line of ``tools/model_converters/<method>_to_mmkr.py``:
    ``SRC DST [--config CONFIG]``, and ``--ema`` where the method's files
    keep an EMA of the weights under ``ema_key`` beside the weights under
    ``state_key``. Prints the weights taken, the network found and, last,
    the path written; returns that path."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=f"{method}'s checkpoint (.pth.tar)")
    parser.add_argument('dst',
                        help='output name; written as DST-<sha256[:8]>.pth')
    parser.add_argument(
        '--config',
        help='mmkr config to convert into (default: the one of '
        'the network found in SRC)')
    if ema_key is not None:
        parser.add_argument(
            '--ema',
            action='store_true',
            help=f"convert the EMA of the weights ('{ema_key}') instead of "
            f"the weights ('{state_key}')")
    args = parser.parse_args(argv)
    taken = ema_key if getattr(args, 'ema', False) else state_key
    network, state = convert_authors_checkpoint(args.src, detector, method,
                                                args.config, taken)
    chosen = 'given' if args.config else 'inferred from the tensor shapes'
    print(f"{args.src}: '{taken}'; {network.name}; config {network.config} "
          f'({chosen}); {len(state)} tensors')
    path = publish_converted(state, args.src, network, args.dst)
    print(path)
    return path
