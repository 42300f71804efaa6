"""Speed and peak memory of KR layers and KR models against their baselines.

Two modes, both timing every candidate in one process, round-robin (one run
of each in turn, ``--repeat`` rounds, median), so that a busy machine slows
them alike:

``--layers``: forward + backward of every distinct conv of ResNet-18 and
MobileNetV2 (widen 0.5) but the stem, at 224x224, batch 32, as

- ``static``: ``nn.Conv2d``;
- ``ref``: the slow per-sample reference of :mod:`mmkr.testing.reference`
  (a loop over samples, each kernel built in full), KR on;
- ``odconv``: ODConv's batch-folded execution, written below from its code:
  the (B, K, C_out, C_in/g, k, k) product of attentions and candidates is
  built and summed over K, then one conv with the batch in its groups;
- ``kr-off`` / ``kr-on``: mmkr's :class:`DynamicConv2d` without and with the
  kernel representation (kr-off has ODConv's attentions, so kr-off vs
  odconv compares the execution alone);
- ``grouped`` / ``unfold`` / ``kfold`` (with ``--paths``): kr-off forced
  onto each of those paths;
- ``tuned``: kr-off with ``path='autotune'``, which times its exact paths
  once and keeps the fastest; the ``tuned path`` column names its choice
  and ``rule path`` what the rule of thumb runs.

Whole-model mode, ``CONFIG``: a training step (forward, cross-entropy,
backward, SGD step) and inference on synthetic images, images/s and peak
memory, beside the static baseline: ``--baseline CONFIG``, or by default the
backbone that the config's ``KRBackbone`` wraps with a linear head on the
pooled feature. ``--compile`` adds ``torch.compile``d rows.
``--conv-path autotune`` (or a path name) sets the KR model's
``KRBackbone(conv_path=...)``; the paths its dynamic convs run in the
training step are printed under the table.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` over the step; on
CPU the peak of the tensors alive during the step, counted by PyTorch's
``torch.distributed._tools.mem_tracker.MemTracker`` (storages created in the
step; inputs and parameters made before it and the kernels' internal
scratch buffers are not counted).

Examples::

    python tools/analysis_tools/benchmark.py --layers
    python tools/analysis_tools/benchmark.py configs/kr/resnet18_kr4.py \\
        --batch-size 16
    python tools/analysis_tools/benchmark.py configs/kr/resnet18_kr4.py \\
        --device cuda --amp --batch-size 64 --compile
"""
import argparse
import copy
import statistics
import sys
import time
from contextlib import nullcontext
from typing import Callable, Dict, List, NamedTuple, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config, DictAction
from mmengine.utils import ProgressBar

KR_DIMS = 64


def parse_args():
    parser = argparse.ArgumentParser(
        description='Time and peak memory of KR layers or KR models against '
        'static and ODConv-style baselines')
    parser.add_argument('config', nargs='?', help='model config (whole-model '
                        'mode)')
    parser.add_argument('--layers', action='store_true',
                        help='benchmark single conv layers instead')
    parser.add_argument('--models', nargs='+',
                        default=['resnet18', 'mobilenet_v2'],
                        choices=['resnet18', 'mobilenet_v2'],
                        help='--layers: whose layer shapes')
    parser.add_argument('--kernel-num', type=int, default=4,
                        help='--layers: K of the dynamic layers')
    parser.add_argument('--no-reference', action='store_true',
                        help='--layers: skip the slow per-sample reference')
    parser.add_argument('--paths', action='store_true',
                        help='--layers: also time kr-off forced onto its '
                        'grouped and its unfold path')
    parser.add_argument('--conv-path',
                        help="whole-model mode: the KR model's conv_path "
                        "('autotune' or a path name; default: the rule)")
    parser.add_argument('--baseline', help='config of the static baseline '
                        '(default: the backbone KRBackbone wraps)')
    parser.add_argument('--batch-size', type=int,
                        help='default 32 (--layers) or 16')
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--repeat', type=int, default=5,
                        help='timed rounds (the median is reported)')
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', action='store_true',
                        help='autocast (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--amp-dtype', choices=['float16', 'bfloat16'],
                        help='override the autocast dtype')
    parser.add_argument('--compile', action='store_true',
                        help='whole-model mode: also torch.compile the models')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of CONFIG')
    args = parser.parse_args()
    if args.layers == bool(args.config):
        parser.error('give either a CONFIG or --layers')
    if args.batch_size is None:
        args.batch_size = 32 if args.layers else 16
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available')
    return args


# ------------------------------------------------------------ measurement
def synchronize(device: torch.device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def autocast(args, device: torch.device):
    if not args.amp:
        return nullcontext()
    dtype = args.amp_dtype or ('float16'
                               if device.type == 'cuda' else 'bfloat16')
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


def time_round_robin(steps: Dict[str, Callable], repeat: int, warmup: int,
                     device: torch.device) -> Dict[str, float]:
    """Median seconds per call of each step, the steps taking turns."""
    # a bar on stderr, updated between the timed calls
    progress = ProgressBar((warmup + repeat) * len(steps), file=sys.stderr)
    for step in steps.values():
        for _ in range(warmup):
            step()
            progress.update()
    times = {name: [] for name in steps}
    for _ in range(repeat):
        for name, step in steps.items():
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
            progress.update()
    sys.stderr.write('\n')
    return {name: statistics.median(t) for name, t in times.items()}


def peak_memory(step: Callable, device: torch.device) -> float:
    """Bytes: the peak of memory allocated during ``step`` above what was
    allocated before it."""
    if device.type == 'cuda':
        synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    from torch.distributed._tools.mem_tracker import MemTracker
    tracker = MemTracker()
    with tracker:
        step()
    peak = tracker.get_tracker_snapshot('peak')
    return sum(per_device['Total'] for per_device in peak.values())


MEMORY_METHOD = {
    'cuda': 'torch.cuda.max_memory_allocated over the step',
    'cpu': 'peak of tensors alive during the step (torch.distributed.'
    '_tools.mem_tracker.MemTracker; excludes kernel scratch buffers)',
}


def print_table(header: List[str], rows: List[List[str]]):
    widths = [max(len(r[i]) for r in [header] + rows)
              for i in range(len(header))]
    for row in [header, ['-' * w for w in widths]] + rows:
        print('  '.join(c.rjust(w) for c, w in zip(row, widths)), flush=True)


# ----------------------------------------------------------- layer mode
class ConvShape(NamedTuple):
    in_channels: int
    out_channels: int
    kernel_size: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    height: int
    width: int

    def __str__(self):
        kind = ('dw' if self.groups == self.in_channels == self.out_channels
                else f'g{self.groups}' if self.groups > 1 else '')
        return (f'{self.in_channels}->{self.out_channels} '
                f'{self.kernel_size[0]}x{self.kernel_size[1]}{kind} '
                f's{self.stride[0]} @{self.height}')


def conv_shapes(model: str, input_size: int) -> List[ConvShape]:
    """The distinct convs of an mmpretrain backbone but the first to run."""
    from mmpretrain.models import MobileNetV2, ResNet
    net = (ResNet(depth=18) if model == 'resnet18' else MobileNetV2(
        widen_factor=0.5))
    net.eval()  # mmpretrain's train() overrides return None
    seen: List[ConvShape] = []

    def record(conv, args):
        shape = ConvShape(conv.in_channels, conv.out_channels,
                          conv.kernel_size, conv.stride, conv.padding,
                          conv.dilation, conv.groups, *args[0].shape[-2:])
        if shape not in seen:
            seen.append(shape)

    handles = [
        m.register_forward_pre_hook(record) for m in net.modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        net(torch.zeros(1, 3, input_size, input_size))
    for handle in handles:
        handle.remove()
    return seen[1:]


def odconv_style(layer, x: torch.Tensor) -> torch.Tensor:
    """ODConv's own execution (Li et al. 2022, ``ODConv2d._forward_impl_
    common``): y = f ⊙ conv(c ⊙ x, Σ_k (s ⊙ a_k ⊙ W_k)), with the K-fold
    per-sample product built before the sum and the batch in the groups."""
    att, _ = layer.attend(x.mean(dim=(2, 3)))
    b, c, h, w = x.shape
    kh, kw = layer.kernel_size
    ones = x.new_ones(b, 1)
    spatial = att.spatial if att.spatial is not None else ones
    kernel = att.kernel if att.kernel is not None else ones
    weight = (spatial.view(b, 1, 1, 1, kh, kw) *
              kernel.view(b, -1, 1, 1, 1, 1) *
              layer.weight.unsqueeze(0)).sum(dim=1)
    if att.channel is not None:
        x = x * att.channel.view(b, c, 1, 1)
    out = F.conv2d(x.reshape(1, -1, h, w),
                   weight.reshape(-1, c // layer.groups, kh, kw), None,
                   layer.stride, layer.padding, layer.dilation,
                   layer.groups * b)
    out = out.view(b, layer.out_channels, *out.shape[-2:])
    if att.filter is not None:
        out = out * att.filter.view(b, -1, 1, 1)
    return out


def layer_steps(shape: ConvShape, args, device: torch.device
                ) -> Tuple[Dict[str, Callable], Callable[[], List[str]]]:
    from mmkr.models.layers import DynamicConv2d
    from mmkr.testing.reference import reference_dynamic_conv2d
    geometry = dict(
        in_channels=shape.in_channels, out_channels=shape.out_channels,
        kernel_size=shape.kernel_size, stride=shape.stride,
        padding=shape.padding, dilation=shape.dilation, groups=shape.groups)
    static = nn.Conv2d(**geometry, bias=False).to(device)
    kr_off = DynamicConv2d(**geometry, kernel_num=args.kernel_num).to(device)
    kr_on = DynamicConv2d(**geometry, kernel_num=args.kernel_num,
                          kr_dims=KR_DIMS).to(device)
    x = torch.randn(args.batch_size, shape.in_channels, shape.height,
                    shape.width, device=device, requires_grad=True)
    if args.channels_last:
        x = x.detach().to(memory_format=torch.channels_last).requires_grad_()
    d = torch.randn(args.batch_size, KR_DIMS, device=device,
                    requires_grad=True)

    def step(fn):

        def run():
            with autocast(args, device):
                out = fn()
            out.float().sum().backward()

        return run

    # every candidate is called as a function: MemTracker attributes module
    # calls differently, and the comparison must not depend on it
    steps = dict(static=step(lambda: static._conv_forward(
        x, static.weight, None)))
    if not args.no_reference:
        steps['ref'] = step(lambda: reference_dynamic_conv2d(kr_on, x, d)[0])
    steps['odconv'] = step(lambda: odconv_style(kr_off, x))
    steps['kr-off'] = step(lambda: kr_off.forward_kr(x)[0])
    steps['kr-on'] = step(lambda: kr_on.forward_kr(x, d)[0])
    tuned = copy.deepcopy(kr_off)
    tuned.path = 'autotune'
    steps['tuned'] = step(lambda: tuned.forward_kr(x)[0])
    if args.paths:
        for path in ('grouped', 'unfold', 'kfold'):
            forced = copy.deepcopy(kr_off)
            forced.path = path
            steps[path] = step(lambda layer=forced: layer.forward_kr(x)[0])

    def chosen_paths() -> List[str]:
        """The rule's path and the autotuner's (cached once timed)."""
        with autocast(args, device):
            return [layer.execution_path(x, None) for layer in (kr_off, tuned)]

    return steps, chosen_paths


def paths_run(model: nn.Module, step: Callable) -> Dict[str, int]:
    """How many dynamic convs of ``model`` run each path in ``step`` (the
    autotuner's choices where a layer autotunes: cached by then)."""
    from mmkr.models.layers import DynamicConvBase
    counts: Dict[str, int] = {}

    def record(layer, args):
        path = layer.execution_path(args[0], None)
        counts[path] = counts.get(path, 0) + 1

    handles = [
        m.register_forward_pre_hook(record) for m in model.modules()
        if isinstance(m, DynamicConvBase)
    ]
    try:
        step()
    finally:
        for handle in handles:
            handle.remove()
    return counts


def run_layers(args, device: torch.device):
    print(f'forward+backward, batch {args.batch_size}, K={args.kernel_num}, '
          f'{args.input_size}x{args.input_size} input, {args.repeat} rounds '
          f'(median), device {device}'
          f'{", amp" if args.amp else ""}; peak memory: '
          f'{MEMORY_METHOD[device.type]}', flush=True)
    for model in args.models:
        rows = []
        names = None
        for shape in conv_shapes(model, args.input_size):
            steps, chosen_paths = layer_steps(shape, args, device)
            names = list(steps)
            # the slow reference takes one timed run
            slow = {k: steps.pop(k) for k in ['ref'] if k in steps}
            times = time_round_robin(steps, args.repeat, args.warmup,
                                     device)
            times.update(time_round_robin(slow, 1, 0, device))
            mems = {name: peak_memory(fn, device)
                    for name, fn in {**steps, **slow}.items()}
            row = [str(shape), *chosen_paths()]
            row += [f'{times[n] * 1e3:.1f}' for n in names]
            row += [f'{times[n] / times[base]:.2f}'
                    for n in ('kr-off', 'kr-on')
                    for base in ('static', 'odconv')]
            row += [f'{mems[n] / 2**20:.1f}' for n in names]
            row += [f'{mems[n] / mems[base]:.2f}'
                    for n in ('kr-off', 'kr-on')
                    for base in ('static', 'odconv')]
            rows.append(row)
            print('  ' + ' | '.join(row), flush=True)
        header = (['layer', 'rule path', 'tuned path'] +
                  [f'{n} ms' for n in names] + [
            f'{n}/{b} t' for n in ('off', 'on') for b in ('static', 'odc')
        ] + [f'{n} MiB' for n in names] + [
            f'{n}/{b} m' for n in ('off', 'on') for b in ('static', 'odc')
        ])
        print(f'\n{model}:')
        print_table(header, rows)


# ---------------------------------------------------------- model mode
def pools_itself(backbone_cfg: dict, input_size: int) -> bool:
    """Whether the backbone's last output is already a vector (a ViT's
    class token), which takes no pooling neck."""
    from mmpretrain.registry import MODELS
    backbone = MODELS.build(backbone_cfg)
    backbone.eval()
    with torch.no_grad():
        outs = backbone(torch.zeros(1, 3, input_size, input_size))
    return outs[-1].dim() == 2


def static_baseline(cfg: Config, input_size: int) -> Config:
    """The static model that a KR config wraps: the inner backbone, and a
    linear head on the pooled feature in place of a KR head."""
    model = cfg.model.copy()
    backbone = model.backbone
    if backbone.get('type') != 'KRBackbone':
        raise ValueError(f'{backbone.get("type")} is not a KRBackbone: '
                         'give the static baseline with --baseline')
    model.backbone = backbone.backbone
    head = model.get('head')
    if head is not None and head.get('type') == 'KRLinearClsHead':
        head = head.copy()
        head.type = 'LinearClsHead'
        head.pop('kr_dims')
        model.head = head
        if model.get('neck') is None and not pools_itself(
                model.backbone, input_size):
            model.neck = dict(type='GlobalAveragePooling')
    return Config(dict(model=model))


def build_classifier(cfg: Config, device: torch.device) -> nn.Module:
    from mmpretrain.registry import MODELS

    # the layers' own initialisation; init_weights would only add a log
    return MODELS.build(cfg.model).to(device).train()


def model_steps(model: nn.Module, args, device: torch.device,
                compiled: bool) -> Dict[str, Callable]:
    size = args.input_size
    inputs = torch.randn(args.batch_size, 3, size, size, device=device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        inputs = inputs.to(memory_format=torch.channels_last)
    num_classes = model.head.num_classes
    labels = torch.randint(num_classes, (args.batch_size, ), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = (torch.amp.GradScaler(device.type) if args.amp
              and device.type == 'cuda' and args.amp_dtype != 'bfloat16'
              else None)

    def logits(x):
        return model(x, mode='tensor')

    forward = torch.compile(logits, dynamic=True) if compiled else logits

    def train():
        model.train()
        with autocast(args, device):
            loss = F.cross_entropy(forward(inputs).float(), labels)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def infer():
        model.eval()
        with torch.no_grad(), autocast(args, device):
            forward(inputs)

    return dict(train=train, infer=infer)


def memory_columns(steps: Dict[tuple, Callable], kind: str,
                   device: torch.device, compiled: bool) -> List[str]:
    """Static MiB, KR MiB and their ratio for the ``kind`` step; '-' for a
    compiled step on CPU, where MemTracker's dispatch mode makes dynamo fall
    back to eager, so the figures would be eager's."""
    if compiled and device.type != 'cuda':
        return ['-'] * 3
    static, kr = (peak_memory(steps[(name, kind)], device)
                  for name in ('static', 'kr'))
    return [f'{static / 2**20:.0f}', f'{kr / 2**20:.0f}', f'{kr / static:.2f}']


def run_model(args, device: torch.device):
    from mmengine.registry import init_default_scope

    import mmkr  # noqa: F401 registers KRBackbone and the KR head
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.conv_path:
        cfg.merge_from_dict({'model.backbone.conv_path': args.conv_path})
    init_default_scope('mmpretrain')
    baseline = (Config.fromfile(args.baseline)
                if args.baseline else static_baseline(cfg, args.input_size))
    models = dict(kr=build_classifier(cfg, device),
                  static=build_classifier(baseline, device))
    print(f'{args.config} vs {args.baseline or "its wrapped backbone"}: '
          f'batch {args.batch_size}, {args.input_size}x{args.input_size}, '
          f'{args.repeat} rounds (median), device {device}'
          f'{", amp" if args.amp else ""}; peak memory: '
          f'{MEMORY_METHOD[device.type]}', flush=True)
    rows = []
    for compiled in ([False, True] if args.compile else [False]):
        steps = {(name, kind): fn
                 for name, model in models.items()
                 for kind, fn in model_steps(model, args, device,
                                             compiled).items()}
        times = time_round_robin(steps, args.repeat, args.warmup, device)
        for kind in ('train', 'infer'):
            kr, static = times[('kr', kind)], times[('static', kind)]
            rows.append([
                kind, 'compiled' if compiled else 'eager',
                f'{args.batch_size / static:.1f}',
                f'{args.batch_size / kr:.1f}', f'{kr / static:.2f}',
                *memory_columns(steps, kind, device, compiled)
            ])
            print('  ' + ' | '.join(rows[-1]), flush=True)
    print_table([
        'step', 'mode', 'static img/s', 'KR img/s', 'time KR/static',
        'static MiB', 'KR MiB', 'memory KR/static'
    ], rows)
    counts = paths_run(models['kr'], steps[('kr', 'train')])
    print('paths of the dynamic convs in a KR training step (conv_path='
          f'{args.conv_path or "rule"}): ' +
          (', '.join(f'{path} {n}' for path, n in sorted(counts.items()))
           or 'none (the model has no dynamic conv)'))


def main():
    args = parse_args()
    device = torch.device(args.device)
    if args.layers:
        run_layers(args, device)
    else:
        run_model(args, device)


if __name__ == '__main__':
    main()
