"""Every backbone of mmpretrain's registry under KRBackbone: the smallest
arch of each, an input it accepts, and the checks a wrapped backbone must
pass.

The list of backbones comes from the registry, not from this file: a
backbone of a newer mmpretrain that is missing from :data:`CASES` is tried
with its default options and either passes or fails; :data:`EXCLUDED` says
why a backbone is left out.
"""
import inspect
from typing import Dict, List, NamedTuple, Optional

import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401
from mmkr.models.backbones.probe import float_tensors
from mmkr.models.layers import is_convertible


class Case(NamedTuple):
    """How a backbone is built and fed: its options (the smallest arch,
    small windows or images where the arch allows), the image side and
    channels."""
    options: dict
    size: int = 32
    in_channels: int = 3


# Options of the smallest arch. Windowed and fixed-size backbones get small
# images through their own img_size / window_size, which do not change the
# arch's layers.
CASES: Dict[str, Case] = {
    # without its classifier: with one, LeNet5 squeezes the batch
    # dimension of a single image away, so no sample can run alone
    'LeNet5':
    Case(dict(), in_channels=1),
    'AlexNet':
    Case(dict(), size=64),
    'VGG':
    Case(dict(depth=11)),
    'RegNet':
    Case(dict(arch='regnetx_400mf')),
    'ResNet':
    Case(dict(depth=18)),
    'ResNeXt':
    Case(dict(depth=50)),
    'ResNetV1c':
    Case(dict(depth=18)),
    'ResNetV1d':
    Case(dict(depth=18)),
    'ResNeSt':
    Case(dict(depth=50)),
    'ResNet_CIFAR':
    Case(dict(depth=18)),
    'SEResNet':
    Case(dict(depth=50)),
    'SEResNeXt':
    Case(dict(depth=50)),
    'Res2Net':
    Case(dict(depth=50)),
    'MobileNetV3':
    Case(dict(arch='small_050')),
    'VisionTransformer':
    Case(dict(arch='deit-tiny', img_size=32, patch_size=8)),
    'DistilledVisionTransformer':
    Case(dict(arch='deit-tiny', img_size=32, patch_size=8)),
    'DeiT3':
    Case(dict(arch='small', img_size=32, patch_size=8)),
    'BEiTViT':
    Case(dict(arch='deit-tiny', img_size=32, patch_size=8)),
    'RevVisionTransformer':
    Case(
        dict(arch='deit-tiny',
             img_size=32,
             patch_size=8,
             no_custom_backward=True)),
    'SwinTransformer':
    Case(dict(arch='tiny', img_size=64, window_size=2), size=64),
    'SwinTransformerV2':
    Case(dict(arch='tiny', img_size=64, window_size=[2, 2, 2, 2]), size=64),
    'TNT':
    Case(dict(arch='small', img_size=32)),
    'TIMMBackbone':
    Case(dict(model_name='resnet18', pretrained=False)),
    'T2T_ViT':
    Case(dict(img_size=64), size=64),
    'RepVGG':
    Case(dict(arch='A0')),
    'Conformer':
    Case(dict(arch='tiny'), size=64),
    'MlpMixer':
    Case(dict(arch='small', img_size=32, patch_size=8)),
    'PCPVT':
    Case(dict(arch='small')),
    'SVT':
    Case(dict(arch='small'), size=64),
    'EfficientNet':
    Case(dict(arch='b0')),
    'EfficientNetV2':
    Case(dict(arch='b0')),
    'ConvNeXt':
    Case(dict(arch='atto')),
    'HRNet':
    Case(dict(arch='w18')),
    'ConvMixer':
    Case(dict(arch='768/32')),
    'EdgeNeXt':
    Case(dict(arch='xxsmall')),
    'CSPDarkNet':
    Case(dict(depth=53)),
    'CSPResNet':
    Case(dict(depth=50)),
    'CSPResNeXt':
    Case(dict(depth=50)),
    'RepLKNet':
    Case(dict(arch='31B')),
    'RepMLPNet':
    Case(dict(arch='base', img_size=64), size=64),
    'PoolFormer':
    Case(dict(arch='s12')),
    'RIFormer':
    Case(dict(arch='s12')),
    'DenseNet':
    Case(dict(arch='121')),
    'VAN':
    Case(dict(arch='tiny')),
    'InceptionV3':
    Case(dict(), size=75),
    'MobileOne':
    Case(dict(arch='s0')),
    # its last stage's attention bias is made for 7x7 tokens
    'EfficientFormer':
    Case(dict(arch='l1'), size=224),
    'MViT':
    Case(dict(arch='tiny', img_size=64), size=64),
    'HorNet':
    Case(dict(arch='tiny')),
    'MobileViT':
    Case(dict(arch='xx_small'), size=64),
    'DaViT':
    Case(dict(arch='tiny', window_size=2), size=64),
    'MixMIMTransformer':
    Case(dict(arch='base',
              img_size=64,
              window_size=[2, 2, 2, 2],
              drop_path_rate=0.),
         size=64),
    'TinyViT':
    Case(dict(arch='5m', img_size=(64, 64), window_size=[2, 2, 2, 2]), size=64),
    'LeViT':
    Case(dict(arch='128s', img_size=64), size=64),
    'Vig':
    Case(dict(arch='tiny'), size=224),
    'PyramidVig':
    Case(dict(arch='tiny'), size=224),
    'XCiT':
    Case(dict(img_size=32,
              embed_dims=48,
              depth=2,
              num_heads=4,
              cls_attn_layers=1),
         size=32),
    'ViTSAM':
    Case(dict(arch='base', img_size=64, window_size=2), size=64),
    'ViTEVA02':
    Case(dict(arch='tiny', img_size=32, patch_size=8)),
    'HiViT':
    Case(dict(arch='tiny', img_size=64), size=64),
}

# Backbones that cannot run on their own, with the reason.
_SPARK = ("SparK's sparse encoder: its convs and norms read the mask that "
          'the SparK algorithm sets before each forward pass '
          '(SparseHelper._cur_active), so it runs only inside SparK')
EXCLUDED: Dict[str, str] = {
    'SparseResNet': _SPARK,
    'SparseConvNeXt': _SPARK,
}


def registry_backbones() -> List[str]:
    """The backbones registered in mmpretrain's MODELS: every class defined
    in ``mmpretrain.models.backbones``."""
    return sorted(
        name for name, cls in MODELS.module_dict.items()
        if inspect.isclass(cls)
        and cls.__module__.startswith('mmpretrain.models.backbones.'))


def case_of(name: str) -> Case:
    """The case of backbone ``name``; its default options for one that
    :data:`CASES` does not list yet."""
    return CASES.get(name, Case(dict()))


def build_kr(name: str, case: Optional[Case] = None, **kwargs) -> nn.Module:
    """KRBackbone around backbone ``name`` built as ``case`` (default:
    :func:`case_of`) says, without a probe size: the default must suit every
    backbone."""
    case = case or case_of(name)
    cfg = dict(type='KRBackbone',
               backbone=dict(type=name, **case.options),
               kernel_num=1,
               kr_dims=8,
               in_channels=case.in_channels,
               **kwargs)
    return MODELS.build(cfg)


def images(case: Case,
           batch: int,
           dtype=torch.float32,
           seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch,
                      case.in_channels,
                      case.size,
                      case.size,
                      generator=generator,
                      dtype=dtype)


def check_trains(model: nn.Module, case: Case) -> List[str]:
    """One training step on 2 images: every parameter of the dynamic layers
    and of the d_0 encoder gets a gradient, and every dynamic layer
    receives d (B, D) from the layer before it. Returns the names of the
    backbone's other trainable parameters that get no gradient (a static
    part the backbone itself leaves unused)."""
    seen = {}

    def record(name, layer):
        d = layer.chain.d
        seen.setdefault(name, None if d is None else tuple(d.shape))

    # layers whose output gets no gradient: behind a norm the backbone
    # initialises to zero (timm's ResNet, TinyViT's MBConv), as static
    silent = set()

    def watch(name, output):
        if torch.is_tensor(output) and output.requires_grad:
            output.register_hook(
                lambda grad: silent.add(name) if not grad.any() else None)

    hooks = [
        layer.register_forward_pre_hook(
            lambda m, args, n=layer_name: record(n, m))
        for layer_name, layer in model.dynamic_layers.items()
    ] + [
        layer.register_forward_hook(
            lambda m, args, out, n=layer_name: watch(n, out))
        for layer_name, layer in model.dynamic_layers.items()
    ]
    model.train()
    try:
        outputs = float_tensors(model(images(case, 2)))
    finally:
        for hook in hooks:
            hook.remove()
    # weighted: the plain sum of a LayerNorm's outputs does not depend on
    # its input, so it would give Swin, ConvNeXt and kin no gradient
    generator = torch.Generator().manual_seed(2)
    sum((out.float() * torch.randn(out.shape, generator=generator)).sum()
        for out in outputs).backward()
    missing_d = [n for n in model.dynamic_names if seen.get(n) != (2, 8)]
    assert not missing_d, f'no d (2, 8) reached {missing_d}'
    kr_params = {
        f'backbone.{layer_name}.{p}'
        for layer_name, layer in model.dynamic_layers.items()
        for p, _ in layer.named_parameters()
    } | {f'encoder.{p}'
         for p, _ in model.encoder.named_parameters()}
    no_grad = [
        p_name for p_name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.any())
    ]
    # A silent layer's kernel gets no gradient, nor does the generator of
    # d_i where every layer after layer i is silent (timm's ResNet: a
    # zero-initialised norm closes each block, so the last block's convs
    # are silent and so is the generator of the d they read). Both learn
    # once the norm's weight has moved off zero. The last layer's generator
    # is never exempt: with nothing to read its d, it should not exist.
    order = model.dynamic_names
    heard = [i for i, name in enumerate(order) if name not in silent]
    unheard = order[heard[-1] if heard else 0:-1]
    exempt = {
        f'backbone.{name}.{p}'
        for name, layer in model.dynamic_layers.items()
        for p, _ in layer.named_parameters()
        if (name in silent and not p.startswith('kr_generator.')) or (
            name in unheard and p.startswith('kr_generator.'))
    }
    dead = sorted(set(no_grad) & kr_params - exempt)
    assert not dead, f'KR parameters without gradient: {dead}'
    return [n for n in no_grad if n not in kr_params]


def runs_in_float64(name: str, case: Case) -> bool:
    """Whether the static backbone itself runs in float64 (some make
    float32 tensors of their own in forward)."""
    model = MODELS.build(dict(type=name, **case.options)).double()
    model.eval()  # (some backbones' train() returns None)
    try:
        with torch.no_grad():
            model(images(case, 1, torch.float64))
    except RuntimeError:
        return False
    return True


def check_batch_independence(model: nn.Module, name: str, case: Case) -> str:
    """In eval mode and float64, sample i of a batch of 3 gives the outputs
    it gives alone. A backbone that does not run in float64 even static is
    checked in float32, to 1e-4. Returns the precision checked."""
    dtype = torch.float64
    if not runs_in_float64(name, case):
        dtype = torch.float32
    tolerance = (dict(rtol=1e-7, atol=1e-9)
                 if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5))
    model.to(dtype)
    model.eval()
    batch = images(case, 3, dtype, seed=1)
    with torch.no_grad():
        together = float_tensors(model(batch))
        alone = [float_tensors(model(batch[i:i + 1])) for i in range(3)]
    for level, out in enumerate(together):
        for i in range(3):
            torch.testing.assert_close(
                out[i:i + 1],
                alone[i][level],
                **tolerance,
                msg=lambda msg, i=i, level=level:
                (f'output {level} of sample {i} depends on the other '
                 f'samples of its batch: {msg}'))
    return str(dtype).replace('torch.', '')


def layer_summary(model: nn.Module) -> Dict[str, object]:
    """What KRBackbone did to each convertible layer of the backbone: the
    numbers made dynamic (and, of those, folded: windows, heads or tokens
    in the batch), kept static by ``static_layers``, kept static by the
    probe (by reason), and never called as a module (a backbone that reads
    the layer's weight itself)."""
    dynamic = set(model.dynamic_names)
    inside_dynamic = tuple(f'{name}.' for name in dynamic)
    reasons: Dict[str, int] = {}
    for reason in model.kept_static.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    by_option, never_run = [], []
    for name, module in model.backbone.named_modules():
        if (not is_convertible(module) or name in dynamic
                or name in model.kept_static
                or name.startswith(inside_dynamic)):
            continue
        (by_option if model.is_static(name) else never_run).append(name)
    return dict(dynamic=len(dynamic),
                folded=len(model.folded_names),
                static_layers=by_option,
                kept_static=reasons,
                never_run=never_run)


def check_backbone(name: str,
                   case: Optional[Case] = None) -> Dict[str, object]:
    """Build, train one step, check d and batch independence; the layer
    summary of the wrapped backbone (:func:`layer_summary`)."""
    case = case or case_of(name)
    model = build_kr(name, case)
    summary = layer_summary(model)
    summary['unused'] = check_trains(model, case)
    summary['precision'] = check_batch_independence(model, name, case)
    return summary
