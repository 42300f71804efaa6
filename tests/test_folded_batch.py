"""Layers that see the batch folded with windows, heads or tokens: sample
b's kernel for each of b's rows, and the probe that tells whose rows a
layer sees."""
import pytest
import torch
import torch.nn as nn
from mmpretrain.registry import MODELS

import mmkr  # noqa: F401
from mmkr.models.layers import DynamicConv2d, DynamicLinear, KRChain
from mmkr.testing.reference import (reference_dynamic_conv2d,
                                    reference_dynamic_linear)
from test_layers import KR_DIMS, grads, randomise


def folded(layer, batch):
    """``layer`` in a pass of ``batch`` samples whose rows it may fold."""
    layer.chain = KRChain()
    layer.chain.batch = batch
    layer.batch_folded = True
    return layer


@pytest.mark.parametrize('make,shape,reference', [
    (lambda: DynamicConv2d(
        6, 8, 3, padding=1, kernel_num=4, kr_dims=KR_DIMS, reduction=0.5),
     (6, 6, 5, 4), reference_dynamic_conv2d),
    (lambda: DynamicLinear(6, 8, kernel_num=4, kr_dims=KR_DIMS, reduction=0.5),
     (6, 4, 3, 6), reference_dynamic_linear),
],
                         ids=['conv', 'linear'])
def test_folded_rows_take_their_samples_kernel(make, shape, reference):
    """2 samples of 3 windows each: h is the mean over a sample's windows
    and its kernel serves all of them (float64, forward and backward)."""
    layer = folded(randomise(make().double()), batch=2)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    d = torch.randn(2, KR_DIMS, dtype=torch.float64, requires_grad=True)
    out, d_next = layer.forward_kr(x, d)
    ref_out, ref_d_next = reference(layer, x, d, samples=2)
    torch.testing.assert_close(out, ref_out, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(d_next, ref_d_next, rtol=1e-9, atol=1e-9)
    inputs = [x, d, *layer.parameters()]
    for g, ref_g in zip(grads((out, d_next), inputs),
                        grads((ref_out, ref_d_next), inputs)):
        torch.testing.assert_close(g, ref_g, rtol=1e-9, atol=1e-9)


def test_rows_of_unknown_owner_are_refused():
    layer = DynamicLinear(4, 4, kr_dims=KR_DIMS)
    layer.chain = KRChain()
    layer.chain.batch = 2
    layer.chain.d = torch.randn(2, KR_DIMS)
    with pytest.raises(ValueError,
                       match='4 rows in a pass of 2 samples.*'
                       'not found sample-major'):
        layer(torch.randn(4, 3, 4))
    layer.batch_folded = True
    with pytest.raises(ValueError, match='5 is not a multiple of 2'):
        layer(torch.randn(5, 3, 4))


@MODELS.register_module(force=True)
class FoldingProbeNet(nn.Module):
    """A backbone with one layer of each layout the probe tells apart."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        self.heads = nn.Linear(4, 4)  # 2 heads of each sample, at any size
        self.window = nn.Linear(8, 8)  # sample-major windows
        self.interleaved = nn.Linear(8, 8)  # window-major windows
        self.table = nn.Linear(2, 8)  # a table shared by every sample
        self.table_input = nn.Parameter(torch.randn(1, 2))
        self.shared = nn.Linear(8, 8)  # runs twice
        self.head = nn.Linear(8, 8)

    @staticmethod
    def windows(x):
        """(B, C, H, W) -> (B*n, 4, C), 2x2 windows, sample-major."""
        b, c, h, w = x.shape
        x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(-1, 4, c)

    def forward(self, images):
        x = self.stem(images)
        b, c, h, w = x.shape
        heads = x.view(b, 2, c // 2, h * w).transpose(2, 3)
        heads = self.heads(heads.reshape(b * 2, h * w, c // 2))
        x = x + heads.view(b, 2, h * w, -1).transpose(2, 3).reshape(x.shape)
        win = self.windows(x)
        win = self.window(win)
        n = win.shape[0] // b
        win = win.view(b, n, 4, -1).transpose(0, 1).reshape(b * n, 4, -1)
        win = self.interleaved(win).view(n, b, 4, -1).transpose(0, 1)
        x = win.mean(dim=(1, 2)) + self.table(self.table_input)
        return (self.head(self.shared(self.shared(x))), )


def build_probe_net(**kwargs):
    return MODELS.build(
        dict(type='KRBackbone',
             backbone=dict(type='FoldingProbeNet'),
             kernel_num=4,
             kr_dims=KR_DIMS,
             probe_size=(8, 8),
             **kwargs)).double().eval()


def batch_mixes_samples(model, images):
    """Whether a sample's output depends on the others of its batch."""
    with torch.no_grad():
        together = model(images)[0]
        alone = torch.cat(
            [model(images[i:i + 1])[0] for i in range(len(images))])
    return not torch.allclose(together, alone, rtol=1e-10, atol=1e-10)


def test_probe_keeps_what_cannot_be_per_sample_static():
    """At the probe size each sample has one window, where a window-major
    layout looks sample-major; the probe at twice the size tells."""
    model = build_probe_net()
    assert model.dynamic_names == ['heads', 'window', 'head']
    assert model.folded_names == ['heads', 'window']
    reasons = model.kept_static
    assert set(reasons) == {'interleaved', 'table', 'shared'}
    assert 'another layout' in reasons['interleaved']
    assert 'does not depend on the image' in reasons['table']
    assert 'runs 2 times' in reasons['shared']
    images = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    assert not batch_mixes_samples(model, images)


def test_force_dynamic_overrides_the_probe():
    """Forcing the window-major layer dynamic mixes samples: what the probe
    keeps static is kept static for a reason."""
    model = build_probe_net(force_dynamic=['interleaved'])
    assert model.dynamic_names == ['heads', 'window', 'interleaved', 'head']
    assert batch_mixes_samples(model,
                               torch.rand(3, 3, 16, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="force_dynamic pattern 'nope'"):
        build_probe_net(force_dynamic=['nope'])


def small_swin(**kwargs):
    return MODELS.build(
        dict(type='KRBackbone',
             backbone=dict(type='SwinTransformer',
                           arch=dict(embed_dims=16,
                                     depths=[2, 2],
                                     num_heads=[2, 2]),
                           img_size=32,
                           window_size=2,
                           drop_path_rate=0.,
                           out_indices=(1, ),
                           **kwargs),
             kernel_num=4,
             kr_dims=KR_DIMS)).double()


def test_swin_window_attention_takes_each_samples_d():
    """Permuting the batch permutes the outputs; the KR layer in window
    attention gives each of sample b's windows b's kernel."""
    model = small_swin().eval()
    qkv = 'stages.0.blocks.1.attn.w_msa.qkv'
    assert qkv in model.dynamic_names and not model.kept_static
    layer = model.dynamic_layers[qkv]
    seen = {}
    hooks = [
        layer.register_forward_pre_hook(
            lambda m, args: seen.update(x=args[0], d=m.chain.d)),
        layer.register_forward_hook(lambda m, args, out: seen.update(out=out)),
    ]
    images = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    perm = torch.tensor([2, 0, 1])
    with torch.no_grad():
        out = model(images)[0]
        assert seen['x'].shape[0] == 3 * 16  # 16 windows of each sample
        expected, _ = reference_dynamic_linear(layer,
                                               seen['x'],
                                               seen['d'],
                                               samples=3)
        torch.testing.assert_close(seen['out'], expected)
        torch.testing.assert_close(model(images[perm])[0], out[perm])
    for hook in hooks:
        hook.remove()


def test_swin_with_cp_recomputes_with_each_samples_d():
    """The recomputation in backward runs after the pass: it must still
    know the batch size to give windows their sample's kernel."""
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    results = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        model = small_swin(with_cp=with_cp).train()
        loss = (model(images)[0]**2).sum()
        results.append(torch.autograd.grad(loss, model.parameters()))
    for plain, checkpointed in zip(*results):
        torch.testing.assert_close(checkpointed, plain)


def small_revvit(**kwargs):
    return dict(type='KRBackbone',
                backbone=dict(type='RevVisionTransformer',
                              arch=dict(embed_dims=16,
                                        num_layers=2,
                                        num_heads=2,
                                        feedforward_channels=32),
                              img_size=32,
                              patch_size=8,
                              **kwargs),
                kr_dims=KR_DIMS)


def test_reversible_blocks_are_refused_with_the_way_out():
    with pytest.raises(ValueError,
                       match=r"runs 8 layers again during backward, in "
                       r"\['layers.0', 'layers.1'\].*static_layers=\["
                       r"'patch_embed.projection', 'layers.0.\*'"):
        MODELS.build(small_revvit())
    # its plain backward keeps the forward pass's d
    model = MODELS.build(small_revvit(no_custom_backward=True))
    sum(out.sum() for out in model(torch.rand(2, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in model.parameters()
               if p.requires_grad)
