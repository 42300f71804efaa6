"""A convolution with one kernel per sample, as a single PyTorch operator.

The fast way to convolve every sample with its own kernel is one conv with
the batch folded into its groups. Written inline, that puts the batch size
into the conv's ``groups``, which ``torch.compile`` then specialises on (a
recompile for every batch size). As a custom operator the fold happens
inside the operator: the compiler sees an opaque op whose output shape
follows the batch symbolically, so one graph serves every batch size, at the
speed of eager execution. Exporters that cannot carry a custom operator
(ONNX, TorchScript tracing) need a batch-agnostic formulation instead; see
:class:`~mmkr.models.layers.DynamicConv2d`'s ``graph_path``.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def conv_output_size(size: Sequence[int], kernel_size: Sequence[int],
                     stride: Sequence[int], padding: Sequence[int],
                     dilation: Sequence[int]) -> Tuple[int, ...]:
    """The spatial size of a conv's output for an input of ``size``."""
    return tuple((n + 2 * pad - dil * (k - 1) - 1) // s + 1
                 for n, k, s, pad, dil in zip(size, kernel_size, stride,
                                             padding, dilation))


def _folded(x: Tensor, kernels: Tensor) -> Tuple[Tensor, Tensor]:
    """x (B, C_in, H, W) -> (1, B*C_in, H, W); kernels (B, C_out, C_in/g,
    kh, kw) -> (B*C_out, C_in/g, kh, kw)."""
    return (x.reshape(1, -1, *x.shape[2:]),
            kernels.reshape(-1, *kernels.shape[2:]))


@torch.library.custom_op('mmkr::per_sample_conv2d', mutates_args=())
def per_sample_conv2d(x: Tensor, kernels: Tensor, stride: List[int],
                      padding: List[int], dilation: List[int],
                      groups: int) -> Tensor:
    """y_b = conv(x_b, kernels_b) for every sample b.

    Shapes:
        x: (B, C_in, H, W), kernels: (B, C_out, C_in/groups, kh, kw)
        -> (B, C_out, H', W')
    """
    batch = x.shape[0]
    folded_x, folded_kernels = _folded(x, kernels)
    # the op computes in its inputs' dtype; callers cast for autocast
    with torch.autocast(x.device.type, enabled=False):
        out = F.conv2d(folded_x, folded_kernels, None, stride, padding,
                       dilation, batch * groups)
    return out.view(batch, -1, *out.shape[2:])


@per_sample_conv2d.register_fake
def _per_sample_conv2d_fake(x, kernels, stride, padding, dilation, groups):
    size = conv_output_size(x.shape[2:], kernels.shape[3:], stride, padding,
                            dilation)
    return x.new_empty(x.shape[0], kernels.shape[1], *size)


@torch.library.custom_op('mmkr::per_sample_conv2d_backward',
                         mutates_args=())
def per_sample_conv2d_backward(grad: Tensor, x: Tensor, kernels: Tensor,
                               stride: List[int], padding: List[int],
                               dilation: List[int],
                               groups: int) -> Tuple[Tensor, Tensor]:
    """Gradients of :func:`per_sample_conv2d` for x and the kernels, one
    batch-folded conv backward (also opaque to the compiler)."""
    batch = x.shape[0]
    folded_x, folded_kernels = _folded(x, kernels)
    grad_x, grad_kernels, _ = torch.ops.aten.convolution_backward(
        grad.reshape(1, -1, *grad.shape[2:]), folded_x, folded_kernels, None,
        stride, padding, dilation, False, [0, 0], batch * groups,
        [True, True, False])
    return grad_x.view(x.shape), grad_kernels.view(kernels.shape)


@per_sample_conv2d_backward.register_fake
def _per_sample_conv2d_backward_fake(grad, x, kernels, stride, padding,
                                     dilation, groups):
    return torch.empty_like(x), torch.empty_like(kernels)


def _setup_context(ctx, inputs, output):
    x, kernels, *ctx.conv_args = inputs
    ctx.save_for_backward(x, kernels)


def _backward(ctx, grad):
    x, kernels = ctx.saved_tensors
    grad_x, grad_kernels = per_sample_conv2d_backward(
        grad.contiguous(), x, kernels, *ctx.conv_args)
    return grad_x, grad_kernels, None, None, None, None


per_sample_conv2d.register_autograd(_backward, setup_context=_setup_context)


def per_sample_conv2d_unfold(x: Tensor, kernels: Tensor, stride: List[int],
                             padding: List[int], dilation: List[int],
                             groups: int) -> Tensor:
    """:func:`per_sample_conv2d` as a batched matmul on the unfolded input:
    its ops do not depend on the batch size, so exported graphs and
    compiled ones can hold it, and it moves less data where the output has
    few positions and the kernels are large.

    Shapes:
        x: (B, C_in, H, W), kernels: (B, C_out, C_in/groups, kh, kw)
        -> (B, C_out, H', W')
    """
    b = x.shape[0]
    cols = F.unfold(x, kernels.shape[-2:], dilation, padding, stride)
    cols = cols.view(b, groups, -1, cols.shape[-1])
    out = torch.matmul(kernels.reshape(b, groups, kernels.shape[1] // groups,
                                       -1), cols)
    size = conv_output_size(x.shape[2:], kernels.shape[3:], stride, padding,
                            dilation)
    return out.reshape(b, kernels.shape[1], *size)
