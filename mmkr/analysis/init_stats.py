"""Statistics of a model's initial parameters, grouped so that two
implementations of one network can be compared group by group."""
import math
from collections import defaultdict
from typing import Dict, List, NamedTuple, Tuple

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead

from ..models.layers import DynamicLayer, SpectralKREncoder

# The modules whose parameters are grouped by their path inside the module:
# a dynamic layer ('DynamicConv2d/generator.heads.kernel.weight'), the d_0
# encoder, a classification head. Other parameters are grouped by the type
# of the module that holds them ('BatchNorm2d/weight').
UNIT_TYPES = (DynamicLayer, SpectralKREncoder, ClsHead)


def parameter_groups(model: nn.Module
                     ) -> Dict[str, List[Tuple[str, torch.Tensor]]]:
    """``'<layer type>/<parameter>'`` -> [(full name, parameter), ...] in
    module order; ``<parameter>`` is the path inside the outermost unit
    (:data:`UNIT_TYPES`) that holds it, else the parameter's own name."""
    units = [(name, m) for name, m in model.named_modules()
             if isinstance(m, UNIT_TYPES)]
    groups: Dict[str, List[Tuple[str, torch.Tensor]]] = defaultdict(list)
    for name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            full = f'{name}.{param_name}' if name else param_name
            unit = next(((uname, u) for uname, u in units
                         if not uname or name == uname
                         or name.startswith(uname + '.')), None)
            if unit is None:
                key = f'{type(module).__name__}/{param_name}'
            else:
                inner = full[len(unit[0]) + 1:] if unit[0] else full
                key = f'{type(unit[1]).__name__}/{inner}'
            groups[key].append((full, param))
    return dict(groups)


class GroupStats(NamedTuple):
    """Pooled over every value of a group: its size, mean and standard
    deviation, and how many tensors it has."""
    numel: int
    mean: float
    std: float
    tensors: int


def init_statistics(model: nn.Module) -> Dict[str, GroupStats]:
    """:class:`GroupStats` of every group of :func:`parameter_groups`,
    computed in float64."""
    stats = {}
    for key, params in parameter_groups(model).items():
        values = torch.cat([p.detach().double().flatten() for _, p in params])
        std = values.std().item() if values.numel() > 1 else 0.0
        stats[key] = GroupStats(values.numel(), values.mean().item(), std,
                                len(params))
    return stats


def compare_statistics(stats: Dict[str, GroupStats],
                       reference: Dict[str, GroupStats]
                       ) -> Dict[str, Tuple[float, float]]:
    """For each group in both: (relative difference of the standard
    deviations, (std - std_ref) / std_ref; difference of the means in units
    of the reference's std, (mean - mean_ref) / std_ref). A reference group
    of std 0 (a constant such as BatchNorm's gamma) gives the plain
    differences instead."""
    out = {}
    for key in sorted(stats.keys() & reference.keys()):
        ours, ref = stats[key], reference[key]
        scale = ref.std if ref.std > 0 else 1.0
        out[key] = ((ours.std - ref.std) / scale,
                    (ours.mean - ref.mean) / scale)
    return out


def relative_sampling_error(numel: int) -> float:
    """Standard error of a sample standard deviation relative to the true
    one for ``numel`` normal values, 1/√(2(n - 1))."""
    return 1 / math.sqrt(2 * max(numel - 1, 1))
