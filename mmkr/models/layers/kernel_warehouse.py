"""KernelWarehouse (KW; Li and Yao, ICML 2024) with the KR path.

KW cuts the kernel W (C_out, C_in/g, kh, kw) of a conv into m cells of
c_out x c_in x 1 x 1 and assembles each cell, per sample, as a mixture of the
n cells e_1 .. e_n of a *warehouse* that the convs of a sharing group share:

    w_i = Σ_j α_ij e_j,   i = 1 .. m,   W = assemble(w_1, .., w_m).

The attentions come from KW's contrasting-driven attention function: one
logit per warehouse cell and one for a zero cell, per mixture, L1-normalised
(so attentions may be negative) and blended with a one-hot initial
assignment by τ, which falls from 1 to 0 early in training:

    α_i = (1 - τ) · z_i / (Σ_j |z_ij| + 1e-3) + τ · β_i,   z = KG(h~),

the zero cell's attention dropped. In mmkr's terms F is KW's attention trunk
(GAP -> FC -> norm -> ReLU; with KR its FC reads cat[d, h]), KG the FC to the
n + 1 logits of each mixture (:class:`KWGenerator`; its logits are the state
α~ handed to K), and the warehouses live in a :class:`WarehouseManager`
built from all the layers of a network before they are replaced.

Everything follows the authors' code (OSVAI/KernelWarehouse,
``modules/kernel_warehouse.py``): cell sizes from the gcd of the channels of
a sharing group, the number of cells, the initial assignment, the attention
and the initialisation. Their networks name each conv ``stageA_layerB_convC``
and share a warehouse between the names that ``sharing_range`` makes equal;
:func:`warehouse_names` derives the same groups from any mmpretrain
backbone's module names and conv shapes (see there).
"""
import math
from typing import (Dict, List, NamedTuple, Optional, Sequence, Tuple,
                    Union)

import torch
import torch.nn as nn

from .dynamic_conv_base import DynamicConvBase, conv_dtype, unfold_wins
from .per_sample_conv import per_sample_conv2d, per_sample_conv2d_unfold
from .registry import DynamicMethod, TemperatureSchedule, register_method
from .representation import RepresentationFusion, attention_hidden_dims

SHARING_SCOPES = ('layer', 'conv', 'pwconv', 'dwconv')
HANDOVERS = ('block_input', 'block', None)
# KRBackbone hands the manager and every layer the same options: each takes
# its own and leaves the other's.
WAREHOUSE_OPTIONS = ('cell_num_ratio', 'cell_inplane_ratio',
                     'cell_outplane_ratio', 'sharing_range',
                     'nonlocal_basis_ratio', 'handover', 'reduction')
_LAYER_OPTIONS = ('kr_dims', 'norm')

Ratio = Union[float, Sequence[float]]


def conv_kind(conv: nn.Conv2d) -> str:
    """'dwconv' (depthwise), 'pwconv' (1x1, no groups) or 'conv'."""
    if conv.groups > 1 and conv.groups == conv.in_channels:
        return 'dwconv'
    if tuple(conv.kernel_size) == (1, 1) and conv.groups == 1:
        return 'pwconv'
    return 'conv'


def _stage_and_block(name: str) -> Tuple[Optional[str], str]:
    """(stage, block) of a module name: the name up to its first index and
    that index (``layer2.0.conv1`` -> ``('layer2', '0')``); two indices in a
    row are a list of stages of blocks (``stages.1.0.pointwise_conv1`` ->
    ``('stages.1', '0')``). A name without an index is a block outside the
    stages (a stem, MobileNetV2's last conv): ``(None, top-level name)``."""
    parts = name.split('.')
    for i, part in enumerate(parts):
        if part.isdigit():
            if i + 1 < len(parts) and parts[i + 1].isdigit():
                return '.'.join(parts[:i + 1]), parts[i + 1]
            return '.'.join(parts[:i]), part
    return None, parts[0]


def warehouse_names(statics: Dict[str, nn.Conv2d],
                    sharing_range: Sequence[str] = ('layer', 'conv'),
                    handover: Optional[str] = 'block_input'
                    ) -> Dict[str, str]:
    """The warehouse of every conv, by the authors' sharing rules.

    The authors name a conv ``stageA_layerB_kindC`` and drop the index of
    every part listed in ``sharing_range``; convs whose names then agree
    share a warehouse. Here the parts come from the module names and conv
    shapes of the backbone (``statics``: name -> conv, in run order):

    - stage and layer (block): :func:`_stage_and_block`. A conv outside the
      stages joins the stage of the conv that runs before it (MobileNetV2's
      last 1x1 conv joins the last stage, as in ``kw_mobilenetv2.py``), or
      is a stage of its own where none runs before it (a dynamic stem).
    - kind: :func:`conv_kind`, and its index among the convs of that kind in
      its block, counted from the block's last (so that the projection 1x1
      of every MobileNetV2 block, with or without an expansion 1x1, is one
      kind, as the authors' ``pwconv1``).
    - ``sharing_range``: ``'layer'`` shares across the blocks of a stage;
      ``'conv'`` across all convs of a block whatever their kind (the
      authors' ResNets name every conv ``conv``); ``'pwconv'`` /
      ``'dwconv'`` across the convs of that kind.
    - ``handover``: where the first block of a stage (after the first
      stage) takes the previous stage's warehouse. ``'block_input'``: its
      convs that read the block's input, i.e. with the in_channels of the
      block's first conv (``kw_resnet.py``: conv1 and the downsample conv);
      ``'block'``: all its convs (``kw_mobilenetv2.py``); None: no hand-over
      (``kw_convnext.py``).

    For ResNet (``('layer', 'conv')``, ``'block_input'``), MobileNetV2
    (``('layer', 'pwconv')`` or ``('layer',)``, ``'block'``) and ConvNeXt
    with 1x1-conv pointwise layers (``('layer', 'pwconv')``, None) the
    groups are the authors'.
    """
    if not set(sharing_range) <= set(SHARING_SCOPES):
        raise ValueError(f'sharing_range must be a sequence of '
                         f'{SHARING_SCOPES}, got {sharing_range!r}')
    if handover not in HANDOVERS:
        raise ValueError(f'handover must be one of {HANDOVERS}, got '
                         f'{handover!r}')
    units = {name: _stage_and_block(name) for name in statics}
    stages: List[str] = []
    first_conv: Dict[Tuple[Optional[str], str], str] = {}
    for name, (stage, block) in units.items():
        if stage is not None and stage not in stages:
            stages.append(stage)
        first_conv.setdefault((stage, block), name)
    first_block = {stage: block for stage, block in reversed(list(first_conv))
                   if stage is not None}

    kind_index: Dict[str, str] = {}
    for unit in first_conv:
        seen: Dict[str, int] = {}
        for name in reversed([n for n, u in units.items() if u == unit]):
            kind = conv_kind(statics[name])
            kind_index[name] = f'{kind}{seen.get(kind, 0)}'
            seen[kind] = seen.get(kind, 0) + 1

    names, previous = {}, None
    for name, (stage, block) in units.items():
        if stage is None:
            stage = previous or block
        elif stages.index(stage) and block == first_block[stage] and (
                handover == 'block' or handover == 'block_input'
                and statics[name].in_channels == statics[first_conv[
                    stage, block]].in_channels):
            stage = stages[stages.index(stage) - 1]
        previous = stage
        kind = conv_kind(statics[name])
        if 'conv' in sharing_range:
            kind = 'conv'
        elif kind not in sharing_range:
            kind = kind_index[name]
        block = '' if 'layer' in sharing_range else f'.{units[name][1]}'
        names[name] = f'{stage}{block}:{kind}'
    return names


def _per_warehouse(option: str, value: Ratio, names: List[str]) -> list:
    """One value of ``option`` per warehouse, from one value or a sequence
    of one per warehouse (as the authors' options take them)."""
    if not isinstance(value, (list, tuple)):
        return [value] * len(names)
    if len(value) == 1:
        return list(value) * len(names)
    if len(value) != len(names):
        raise ValueError(
            f'{option} takes one value or one per warehouse; got '
            f'{len(value)} values for the {len(names)} warehouses {names}')
    return list(value)


def initial_assignment(mixtures: int, start: int,
                       cell_num_ratio: float) -> Tuple[List[int], int]:
    """β of a layer: the cell each of its mixtures starts from, and the end
    of the cells it owns (from ``start``).

    With n/m = ``cell_num_ratio`` >= 1 mixture i takes cell start + i·n/m
    (the layer owns n/m cells per mixture); below 1, one mixture in
    m/n takes the next cell and the others the zero cell (-1 here), by the
    authors' pattern (``Attention.init_temperature``)."""
    if cell_num_ratio >= 1:
        step = int(cell_num_ratio)
        return [start + i * step for i in range(mixtures)], \
            start + mixtures * step
    per_cell = int(1. / cell_num_ratio)
    cells = []
    for i in range(mixtures):
        if i % per_cell == (i // per_cell) % per_cell:
            cells.append(start)
            start += 1
        else:
            cells.append(-1)
    return cells, start


class CellAllocation(NamedTuple):
    """What a layer takes from its warehouse.

    warehouse: index of the warehouse; cells: n, its number of cells;
    cell_out, cell_in: a cell's channels; grid: (C_out / c_out,
    C_in/g / c_in, kh·kw), so that m = the product; start, end: the cells
    the layer owns (initialised by it; its initial assignment points into
    them); assignment: β, the initial cell of each mixture (-1: the zero
    cell); reduction: of the attention's hidden width; cell_num_ratio: n/m
    of the warehouse.
    """
    warehouse: int
    cells: int
    cell_out: int
    cell_in: int
    grid: Tuple[int, int, int]
    start: int
    end: int
    assignment: Tuple[int, ...]
    reduction: float
    cell_num_ratio: float

    @property
    def mixtures(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]


class WarehouseManager(nn.Module):
    """The warehouses of a KW network, one per sharing group.

    Built from the static convs that KW layers will replace, as the
    authors' ``Warehouse_Manager`` reserves every layer, then stores the
    warehouses and allocates their cells: the convs of a group
    (:func:`warehouse_names`) have cells of c_in = ⌊gcd(C_in/g) ·
    ``cell_inplane_ratio``⌋ x c_out = ⌊gcd(C_out) · ``cell_outplane_ratio``⌋
    x 1 x 1 (at least 1), layer l is cut into m_l = (C_out / c_out)(C_in/g /
    c_in)·kh·kw cells, and the warehouse holds n = ⌊``cell_num_ratio`` ·
    Σ_l m_l⌋ (at least 1); each layer owns the cells its initial assignment
    points to (:func:`initial_assignment`), in run order.

    Args:
        statics (Dict[str, nn.Conv2d]): the convs to replace, by name, in
            the order in which they run.
        reduction (float or Sequence[float], optional): hidden width
            A = max(C_in · reduction, 16) of the attention; None: 1/16.
        cell_num_ratio, cell_inplane_ratio, cell_outplane_ratio (float or
            Sequence[float]): as above; KW "1x" is ``cell_num_ratio=1``,
            "4x" 4, "1/4x" 0.25 (with in- and out-plane ratios 0.5).
        sharing_range (Sequence[str]): see :func:`warehouse_names`.
        nonlocal_basis_ratio (float): below 1, each layer maps the cells of
            the other layers through max(⌊(n - m_l) · ratio⌋, 16) basis
            logits (the authors' ResNet-50 1/2x).
        handover (str, optional): see :func:`warehouse_names`.
        **layer_options: the options of the layers (``kr_dims``, ``norm``),
            which reach the manager too and are not its business.

    A sequence gives one value per warehouse, in the order of
    :attr:`names` (first use in run order).
    """

    def __init__(self,
                 statics: Dict[str, nn.Module],
                 reduction: Optional[Ratio] = None,
                 cell_num_ratio: Ratio = 1.,
                 cell_inplane_ratio: Ratio = 1.,
                 cell_outplane_ratio: Ratio = 1.,
                 sharing_range: Sequence[str] = ('layer', 'conv'),
                 nonlocal_basis_ratio: float = 1.,
                 handover: Optional[str] = 'block_input',
                 **layer_options):
        super().__init__()
        unknown = sorted(set(layer_options) - set(_LAYER_OPTIONS))
        if unknown:
            raise TypeError(f'WarehouseManager got unknown options {unknown}')
        for name, conv in statics.items():
            if not isinstance(conv, nn.Conv2d):
                raise TypeError(
                    f'KernelWarehouse replaces nn.Conv2d only; {name} is '
                    f'{type(conv).__name__}: keep it static (static_layers)')
        groups = warehouse_names(statics, sharing_range, handover)
        self.sharing_range = tuple(sharing_range)
        self.handover = handover
        self.nonlocal_basis_ratio = nonlocal_basis_ratio
        members: Dict[str, List[str]] = {}
        for layer, warehouse in groups.items():
            members.setdefault(warehouse, []).append(layer)
        self.names = list(members)
        options = dict(
            reduction=_per_warehouse('reduction', 0.0625 if reduction is None
                                     else reduction, self.names),
            cell_num_ratio=_per_warehouse('cell_num_ratio', cell_num_ratio,
                                          self.names),
            cell_inplane_ratio=_per_warehouse('cell_inplane_ratio',
                                              cell_inplane_ratio, self.names),
            cell_outplane_ratio=_per_warehouse(
                'cell_outplane_ratio', cell_outplane_ratio, self.names))
        self.allocations: Dict[str, CellAllocation] = {}
        self.warehouses = nn.ParameterList()
        for index, warehouse in enumerate(self.names):
            self._store(index, {n: statics[n] for n in members[warehouse]},
                        **{k: v[index] for k, v in options.items()})

    def _store(self, index: int, convs: Dict[str, nn.Conv2d],
               reduction: float, cell_num_ratio: float,
               cell_inplane_ratio: float, cell_outplane_ratio: float):
        """Warehouse ``index`` for ``convs`` and their allocations."""
        name = self.names[index]
        if cell_num_ratio <= 0:
            raise ValueError(f'cell_num_ratio must be > 0, got '
                             f'{cell_num_ratio} (warehouse {name!r})')
        out_gcd = math.gcd(*(c.out_channels for c in convs.values()))
        in_gcd = math.gcd(*(c.in_channels // c.groups
                            for c in convs.values()))
        cell_in = max(int(in_gcd * cell_inplane_ratio), 1)
        cell_out = max(int(out_gcd * cell_outplane_ratio), 1)
        grids = {}
        for layer, conv in convs.items():
            if conv.out_channels % cell_out or (conv.in_channels //
                                                conv.groups) % cell_in:
                raise ValueError(
                    f'cells of {cell_out}x{cell_in} channels do not tile '
                    f'{layer} ({conv.out_channels}x'
                    f'{conv.in_channels // conv.groups}) in warehouse '
                    f'{name!r}: cell_outplane_ratio and cell_inplane_ratio '
                    'must be <= 1')
            grids[layer] = (conv.out_channels // cell_out,
                            conv.in_channels // conv.groups // cell_in,
                            conv.kernel_size[0] * conv.kernel_size[1])
        total = sum(g[0] * g[1] * g[2] for g in grids.values())
        cells = max(int(total * cell_num_ratio), 1)
        end = 0
        for layer, grid in grids.items():
            start = end
            assignment, end = initial_assignment(grid[0] * grid[1] * grid[2],
                                                 start, cell_num_ratio)
            self.allocations[layer] = CellAllocation(
                index, cells, cell_out, cell_in, grid, start, end,
                tuple(assignment), reduction, cell_num_ratio)
        if end != cells:
            raise ValueError(
                f'warehouse {name!r}: cell_num_ratio={cell_num_ratio} gives '
                f'{cells} cells for {total} kernel cells, but the initial '
                f'assignment of its layers takes {end}; use an integer ratio '
                '>= 1 or 1/k with layers of k*k cells')
        self.warehouses.append(
            nn.Parameter(torch.randn(cells, cell_out, cell_in, 1, 1)))

    def allocation(self, layer: str) -> CellAllocation:
        """The cells of ``layer``; raises naming the layers there are."""
        if layer not in self.allocations:
            raise KeyError(f'no warehouse holds cells for {layer!r}; the '
                           f'manager was built for {list(self.allocations)}')
        return self.allocations[layer]

    def extra_repr(self) -> str:
        return ', '.join(
            f'{name}: {tuple(w.shape[:3])}'
            for name, w in zip(self.names, self.warehouses))


class KWAttention(NamedTuple):
    """cells: α, (B, m, n), the attention of every mixture over the n cells
    of the warehouse (the zero cell dropped)."""
    cells: torch.Tensor


class KWGenerator(nn.Module):
    """KG of KernelWarehouse: z = FC(h~), n + 1 logits per mixture (the
    n cells of the warehouse and the zero cell).

    With ``nonlocal_basis_ratio`` < 1 the FC gives, per mixture, the logits
    of the layer's own cells, ``num_basis`` basis logits and the zero
    cell's; a second FC maps the basis to the other layers' cells, and a
    bias is added to all (the authors' ``map_to_cell_basis``).

    :meth:`activate` L1-normalises each mixture's logits and blends them with
    the one-hot initial assignment β by τ, the buffer :attr:`temperature`
    (1 -> 0 over the first epochs, :class:`~mmkr.engine.KRTemperatureHook`;
    0, the authors' value before training sets it, until then).

    Args:
        hidden_dims (int): A, the size of h~.
        allocation (CellAllocation): the layer's cells.
        nonlocal_basis_ratio (float): see :class:`WarehouseManager`.

    Shapes:
        h~: (B, A) -> logits alpha~: (B, m·(n + 1)), the state handed to K
    """

    def __init__(self, hidden_dims: int, allocation: CellAllocation,
                 nonlocal_basis_ratio: float = 1.):
        super().__init__()
        mixtures, cells = allocation.mixtures, allocation.cells
        self.mixtures, self.cells = mixtures, cells
        self.state_dims = mixtures * (cells + 1)
        if nonlocal_basis_ratio >= 1:
            self.fc = nn.Linear(hidden_dims, self.state_dims)
            self.basis = None
        else:
            self.start = allocation.start
            self.num_local = int(allocation.cell_num_ratio * mixtures)
            num_nonlocal = cells - self.num_local
            self.num_basis = max(int(num_nonlocal * nonlocal_basis_ratio),
                                 16)
            self.fc = nn.Linear(
                hidden_dims, (self.num_local + self.num_basis + 1) * mixtures,
                bias=False)
            self.basis = nn.Linear(self.num_basis, num_nonlocal, bias=False)
            self.basis_bias = nn.Parameter(torch.zeros(self.state_dims))
        beta = torch.zeros(mixtures, cells + 1)
        beta[torch.arange(mixtures), torch.tensor(allocation.assignment)] = 1
        self.register_buffer('assignment', beta, persistent=False)
        self.register_buffer('temperature', torch.tensor(0.))
        self.reset_parameters()

    def reset_parameters(self):
        """The authors' initialisation: Kaiming normal (fan_out, ReLU gain)
        weights, zero biases."""
        for fc in (self.fc, self.basis):
            if fc is not None:
                nn.init.kaiming_normal_(fc.weight, mode='fan_out',
                                        nonlinearity='relu')
                if fc.bias is not None:
                    nn.init.zeros_(fc.bias)
        if self.basis is not None:
            nn.init.zeros_(self.basis_bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        z = self.fc(hidden)
        if self.basis is None:
            return z
        z = z.view(-1, self.num_local + self.num_basis + 1)
        local, basis, zero = z.split(
            [self.num_local, self.num_basis, 1], dim=1)
        others = self.basis(basis)
        z = torch.cat([others[:, :self.start], local,
                       others[:, self.start:], zero], dim=1)
        return z.view(hidden.shape[0], -1) + self.basis_bias

    def activate(self, logits: torch.Tensor) -> KWAttention:
        """alpha~ (B, m·(n+1)) -> α (B, m, n), in float32 under AMP."""
        with torch.autocast(logits.device.type, enabled=False):
            if logits.dtype in (torch.float16, torch.bfloat16):
                logits = logits.float()
            z = logits.view(-1, self.mixtures, self.cells + 1)
            z = z / (z.abs().sum(dim=2, keepdim=True) + 1e-3)
            tau = self.temperature.to(z.dtype)
            att = (1 - tau) * z + tau * self.assignment.to(z.dtype)
        return KWAttention(att[..., :-1])


class KWConv2d(DynamicConvBase):
    """Y = conv(X, W(x)), W(x) assembled from m cells w_i = Σ_j α_ij e_j of
    a shared warehouse, per sample (KernelWarehouse).

    h = GAP(X) and, with KR on, d give h~ = F(cat[d, h]) (KW's trunk: FC
    without bias + BatchNorm1d + ReLU with ``norm='bn'``, FC with bias +
    LayerNorm + ReLU with ``'ln'``, as the authors' ConvNeXt; width
    A = max(C_in · reduction, 16)); :class:`KWGenerator` gives α. Mixture
    i = (s · G_out + o) · G_in + c (s the kernel position, o, c the output
    and input channel blocks) fills W[o·c_out:(o+1)·c_out,
    c·c_in:(c+1)·c_in, s].

    The layer has no kernel of its own: its cells live in the
    :class:`WarehouseManager` ``network_state`` (a submodule of the
    network), which it reads at every call.

    Execution (:meth:`rule_path`, or :attr:`path` forced): the per-sample
    kernels come from one (B, m, n) x (n, c_out·c_in) matmul, then
    ``'grouped'`` runs one conv with the batch folded into its groups
    (:func:`per_sample_conv2d`), ``'unfold'`` a batched matmul on the
    unfolded input (fewer output positions than half the output channels
    per group; batch-agnostic, the path of exported graphs), and
    ``'pointwise'`` (1x1, no groups or padding) a batched matmul on the
    (strided) input. All compute the same function.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation,
        groups, bias, padding_mode: as for :class:`torch.nn.Conv2d`.
        network_state (WarehouseManager): the network's warehouses.
        name (str): this layer's name in the manager.
        norm (str): 'bn' (the authors' ResNet and MobileNetV2) or 'ln'
            (their ConvNeXt).
        kr_dims (int): D, the size of d; 0: plain KernelWarehouse.
        generate_kr (bool): see :meth:`DynamicLayer.build_kr_generator`.
        **warehouse_options: the :class:`WarehouseManager` options, which
            reach every layer too; the manager has applied them.

    Shapes:
        x: (B, C_in, H, W), d: (B, D) or None
        -> y: (B, C_out, H', W'), d_{i+1}: (B, D) or None; y is
        channels_last when x is.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size,
                 stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = False, padding_mode: str = 'zeros', *,
                 network_state: WarehouseManager, name: str,
                 norm: str = 'bn', kr_dims: int = 0,
                 generate_kr: bool = True, **warehouse_options):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding, dilation, groups, padding_mode,
                         'kernelwarehouse', kr_dims)
        unknown = sorted(set(warehouse_options) - set(WAREHOUSE_OPTIONS))
        if unknown:
            raise TypeError(f'KWConv2d got unknown options {unknown}')
        alloc = network_state.allocation(name)
        if (alloc.grid[0] * alloc.cell_out != out_channels
                or alloc.grid[1] * alloc.cell_in != in_channels // groups
                or alloc.grid[2] != self.kernel_size[0] * self.kernel_size[1]):
            raise ValueError(
                f'the warehouse cells of {name!r} tile a '
                f'{alloc.grid[0] * alloc.cell_out}x'
                f'{alloc.grid[1] * alloc.cell_in} kernel of '
                f'{alloc.grid[2]} positions, not this conv')
        # a plain reference: the manager's parameters belong to the network
        # that holds it, not to each of its layers
        object.__setattr__(self, 'warehouse_manager', network_state)
        self.layer_name = name
        self.allocation = alloc
        self.fusion = RepresentationFusion(
            in_channels, kr_dims,
            attention_hidden_dims(in_channels, alloc.reduction, 16), norm,
            bias=norm != 'bn')
        self.generator = KWGenerator(self.fusion.out_dims, alloc,
                                     network_state.nonlocal_basis_ratio)
        self.build_kr_generator(generate_kr)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    @property
    def cells(self) -> nn.Parameter:
        """The warehouse, (n, c_out, c_in, 1, 1)."""
        return self.warehouse_manager.warehouses[self.allocation.warehouse]

    def reset_parameters(self):
        """The authors' initialisation: the attention's FCs Kaiming normal
        (fan_out, ReLU gain) with zero biases, its norm weight 1 and bias 0,
        and the cells the layer owns Kaiming normal as one (cells·c_out,
        c_in, 1, 1) kernel (``Warehouse_Manager.allocate``)."""
        fc, norm = self.fusion.fc, self.fusion.norm
        nn.init.kaiming_normal_(fc.weight, mode='fan_out',
                                nonlinearity='relu')
        if fc.bias is not None:
            nn.init.zeros_(fc.bias)
        nn.init.ones_(norm.weight)
        nn.init.zeros_(norm.bias)
        self.generator.reset_parameters()
        alloc = self.allocation
        if alloc.end > alloc.start:
            with torch.no_grad():
                nn.init.kaiming_normal_(
                    self.cells[alloc.start:alloc.end].view(
                        -1, alloc.cell_in, 1, 1),
                    mode='fan_out', nonlinearity='relu')
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def options_repr(self) -> str:
        alloc = self.allocation
        return (f'warehouse={self.warehouse_manager.names[alloc.warehouse]!r}'
                f', cells={alloc.cells}, cell=({alloc.cell_out}, '
                f'{alloc.cell_in}), mixtures={alloc.mixtures}')

    def sample_kernels(self, att: KWAttention) -> torch.Tensor:
        """(B, C_out, C_in/g, kh, kw): the cells Σ_j α_ij e_j, assembled."""
        alloc = self.allocation
        batch = att.cells.shape[0]
        mixed = att.cells @ self.cells.flatten(1).to(att.cells.dtype)
        g_out, g_in, positions = alloc.grid
        mixed = mixed.view(batch, positions, g_out, g_in, alloc.cell_out,
                           alloc.cell_in).permute(0, 2, 4, 3, 5, 1)
        return mixed.reshape(batch, self.out_channels,
                             self.in_channels // self.groups,
                             *self.kernel_size)

    def valid_paths(self) -> List[str]:
        paths = ['grouped', 'unfold']
        if self._is_pointwise():
            paths.append('pointwise')
        return paths

    def rule_path(self, height: int, width: int) -> str:
        """``'pointwise'`` for a 1x1 conv without groups or padding;
        ``'unfold'`` where the output has fewer than half as many positions
        as a group has output channels (:func:`unfold_wins`); else
        ``'grouped'``."""
        if self._is_pointwise():
            return 'pointwise'
        out_h, out_w = self.output_size(height, width)
        if unfold_wins(out_h * out_w, self.out_channels, self.groups):
            return 'unfold'
        return 'grouped'

    def _is_pointwise(self) -> bool:
        return (self.kernel_size == (1, 1) and self.groups == 1
                and self.padding == (0, 0))

    def _forward_grouped(self, x, att):
        dtype = conv_dtype(x)
        kernels = self.sample_kernels(att).to(dtype).contiguous()
        return per_sample_conv2d(x.to(dtype), kernels, list(self.stride),
                                 list(self.padding), list(self.dilation),
                                 self.groups)

    def _forward_unfold(self, x, att):
        dtype = conv_dtype(x)
        return per_sample_conv2d_unfold(x.to(dtype),
                                        self.sample_kernels(att).to(dtype),
                                        list(self.stride), list(self.padding),
                                        list(self.dilation), self.groups)

    def _forward_pointwise(self, x, att):
        if self.stride != (1, 1):
            x = x[:, :, ::self.stride[0], ::self.stride[1]]
        b, c, h, w = x.shape
        kernels = self.sample_kernels(att).view(b, self.out_channels, c)
        out = torch.bmm(kernels.to(x.dtype), x.reshape(b, c, h * w))
        return out.view(b, self.out_channels, h, w)

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        att, d_next = self.attend(x.mean(dim=(2, 3)), d)
        return self.finish(self.run_path(x, att), x, self.bias), d_next


# The authors anneal τ from 1 to 0 over 20 epochs (15 for MobileNetV2, in
# its configs), per iteration (engine.py).
register_method(
    DynamicMethod(
        name='kernelwarehouse', code=6, display_name='KernelWarehouse',
        layers={nn.Conv2d: KWConv2d},
        options=('reduction', 'attention_norm'),
        size_option='cell_num_ratio',
        temperature=TemperatureSchedule(1., 0., 20., positive=False),
        network_state=WarehouseManager))
