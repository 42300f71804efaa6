"""What KRBackbone measures on a backbone before it swaps any layer: the
order in which the layers run, whose rows each layer's input holds, and
which layers the backward pass runs again.

The answers come from running the static backbone, not from its source, so
they hold for any backbone, including ones written after this file.
"""
from collections import Counter
from contextlib import contextmanager
from typing import (Any, Callable, Dict, List, NamedTuple, Optional, Sequence,
                    Tuple)

import torch
import torch.nn as nn
from mmengine.utils import to_2tuple

# The sizes tried, in this order, for a backbone without an img_size of its
# own: small first (a cheap probe), then the size mmpretrain's windows and
# fixed position tables are made for, then LeNet's.
FALLBACK_PROBE_SIZES = ((64, 64), (224, 224), (32, 32))


class LayerProbe(NamedTuple):
    """What the probe found about one layer.

    rows: leading size of the layer's input in a pass of 2 samples.
    static_reason: why the layer must stay static, None where it can be
        dynamic: its rows are then sample-major, sample b owning rows
        b*n ... b*n + n - 1 with n = rows / 2 (1: one row per sample).
    """
    rows: int
    static_reason: Optional[str]

    @property
    def folded(self) -> bool:
        """True where each sample owns several rows (n > 1)."""
        return self.rows > 2


@contextmanager
def _input_hooks(model: nn.Module, names: Sequence[str],
                 hook_fn: Callable[[str, Any], None]):
    """Call ``hook_fn(name, input)`` whenever a named submodule runs."""
    modules = dict(model.named_modules())
    handles = [
        modules[name].register_forward_pre_hook(
            lambda module, args, name=name: hook_fn(name, args[0]
                                                    if args else None))
        for name in names
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _eval_pass(model: nn.Module, names: Sequence[str],
               hook_fn: Callable[[str, Any], None], images: torch.Tensor):
    """One eval-mode pass without gradients on ``images``, calling
    ``hook_fn(name, input)`` whenever a named submodule runs; the model's
    mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _input_hooks(model, names, hook_fn):
            model(images)
    finally:
        model.train(was_training)


def _rows_changed(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """(rows, ) True where a row of the input differs between two passes."""
    if before.shape != after.shape:
        return torch.ones(before.shape[0], dtype=torch.bool)
    differ = before != after
    return differ.flatten(1).any(1) if differ.dim() > 1 else differ


def probe_layers(model: nn.Module, names: Sequence[str],
                 images: torch.Tensor) -> Dict[str, LayerProbe]:
    """The named layers that run on ``images`` (2 samples), in the order in
    which they first run, and whose rows their inputs hold.

    Three eval-mode passes: ``images``, then each sample in turn replaced
    by another image. A row that changes when sample b changes depends on
    b; a layer can carry each sample's kernel where every row depends only
    on the sample at its sample-major place. It must stay static where its
    input depends on no sample (a table shared by all, as SwinV2's
    relative-position MLP reads), where rows depend on another sample than
    their place says (another layout, or samples mixed), and where it runs
    more than once per pass (one layer cannot carry d each time).
    """
    if images.shape[0] != 2:
        raise ValueError(f'probe_layers needs 2 images, got {images.shape}')
    generator = torch.Generator().manual_seed(1)
    others = torch.rand(images.shape, generator=generator, dtype=images.dtype)
    runs: Counter = Counter()
    inputs: Dict[str, Optional[torch.Tensor]] = {}
    # changed[name][b]: the rows that differ when sample b is replaced
    changed: Dict[str, List[torch.Tensor]] = {}

    def record(name, x):
        runs[name] += 1
        if runs[name] == 1:
            inputs[name] = x.detach().clone() if torch.is_tensor(x) else None

    def compare(name, x, sample):
        found = changed.setdefault(name, [])
        if len(found) > sample:
            return  # a later run of a layer that runs several times
        base = inputs.get(name)
        found.append(
            _rows_changed(base, x) if base is not None and torch.is_tensor(x)
            else torch.zeros(0, dtype=torch.bool))

    _eval_pass(model, names, record, images)
    for sample in range(2):
        perturbed = images.clone()
        perturbed[sample] = others[sample]
        _eval_pass(model,
                   names,
                   lambda name, x, b=sample: compare(name, x, b),
                   perturbed)
    return {
        name: _classify(inputs[name], runs[name], changed.get(name, []))
        for name in inputs
    }


def _classify(x: Optional[torch.Tensor], runs: int,
              changed: List[torch.Tensor]) -> LayerProbe:
    if x is None:
        return LayerProbe(0, 'its input is not a tensor')
    rows = x.shape[0] if x.dim() else 0
    if runs > 1:
        return LayerProbe(
            rows, f'it runs {runs} times per forward pass, and one layer '
            'cannot carry a kernel representation each time')
    if len(changed) < 2 or not any(c.any() for c in changed):
        return LayerProbe(
            rows, 'its input does not depend on the image (a table shared '
            'by every sample)')
    if rows % 2:
        return LayerProbe(
            rows, f'its input has {rows} rows in a pass of 2 samples, so '
            'they are not the samples or their windows')
    owner = torch.arange(rows) // (rows // 2)
    if any((c & (owner != sample)).any() for sample, c in enumerate(changed)):
        return LayerProbe(
            rows, 'rows of its input depend on another sample than the one '
            'that owns their place in a sample-major layout (another '
            'layout, or samples mixed)')
    return LayerProbe(rows, None)


def input_rows(model: nn.Module, names: Sequence[str],
               images: torch.Tensor) -> Dict[str, int]:
    """The leading size of each named layer's input on ``images`` (one
    eval-mode pass; the first run of a layer that runs several times)."""
    rows: Dict[str, int] = {}

    def record(name, x):
        if torch.is_tensor(x) and x.dim():
            rows.setdefault(name, x.shape[0])

    _eval_pass(model, names, record, images)
    return rows


def execution_order(model: nn.Module, names: Sequence[str],
                    inputs: torch.Tensor) -> List[str]:
    """The order in which the named submodules run in one forward pass.

    Raises if a module runs more than once (a shared layer cannot carry d
    both times) and returns only the modules that ran.
    """
    order: List[str] = []

    def record(name, x):
        if name in order:
            raise RuntimeError(
                f'{name} runs more than once per forward pass; a shared '
                'layer cannot carry a kernel representation. List it in '
                'static_layers.')
        order.append(name)

    _eval_pass(model, names, record, inputs)
    return order


def float_tensors(outputs) -> List[torch.Tensor]:
    """The floating-point tensors of a model's (nested) outputs."""
    if torch.is_tensor(outputs):
        return [outputs] if outputs.is_floating_point() else []
    if isinstance(outputs, (list, tuple)):
        return [t for out in outputs for t in float_tensors(out)]
    if isinstance(outputs, dict):
        return float_tensors(list(outputs.values()))
    return []


def _custom_backward(outputs: List[torch.Tensor]) -> bool:
    """Whether the autograd graph of ``outputs`` holds a custom
    ``autograd.Function`` (reversible blocks, reentrant checkpointing): the
    only nodes whose backward may run modules again."""
    seen, stack = set(), [out.grad_fn for out in outputs]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if isinstance(node, torch.autograd.function.BackwardCFunction):
            return True
        stack.extend(fn for fn, _ in node.next_functions)
    return False


def recomputed_layers(model: nn.Module, names: Sequence[str],
                      images: torch.Tensor) -> List[str]:
    """The named layers that run again during the backward pass of a
    training step on ``images`` (reversible blocks, checkpointing through
    a custom autograd function).

    The backward pass runs only where the graph has such a function
    (:func:`_custom_backward`). The model is left as it was: running
    statistics, gradients, random state and mode.
    """
    recomputed: List[str] = []

    def record(name, x):
        if name not in recomputed:
            recomputed.append(name)

    buffers = {name: buf.clone() for name, buf in model.named_buffers()}
    grads = {name: param.grad for name, param in model.named_parameters()}
    was_training = model.training
    model.train()
    try:
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            outputs = [
                out for out in float_tensors(model(images))
                if out.requires_grad
            ]
            if outputs and _custom_backward(outputs):
                with _input_hooks(model, names, record):
                    sum(out.float().sum() for out in outputs).backward()
    finally:
        with torch.no_grad():
            for name, buf in model.named_buffers():
                buf.copy_(buffers[name])
        for name, param in model.named_parameters():
            param.grad = grads[name]
        model.train(was_training)
    return recomputed


def probe_sizes(backbone: nn.Module,
                probe_size: Optional[Tuple[int, int]] = None,
                img_size=None) -> List[Tuple[int, int]]:
    """The image sizes to probe ``backbone`` at, in the order to try them:
    ``probe_size`` where given, else its own image size where it has one
    (``img_size``, the option it was built with, or its attribute ``img_size``),
    else :data:`FALLBACK_PROBE_SIZES`."""
    if probe_size is not None:
        return [tuple(to_2tuple(probe_size))]
    own = img_size if img_size is not None else getattr(
        backbone, 'img_size', None)
    if own is not None:
        return [tuple(to_2tuple(own))]
    return list(FALLBACK_PROBE_SIZES)
