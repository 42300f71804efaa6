"""Slow references of the KR layers, written from the formulas.

One sample at a time: the attentions from explicit matrix products, each
sample's kernel W_b = f_b ⊙ Σ_k a_bk (s_b ⊙ W_k) ⊙ c_b built in full, then
``F.conv2d`` or a matmul. They share nothing with the fast layers but their
parameters, so the tests compare two independent computations.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def _linear(x: Tensor, layer: torch.nn.Linear) -> Tensor:
    out = layer.weight @ x
    return out if layer.bias is None else out + layer.bias


def _norm(x: Tensor, norm: torch.nn.Module) -> Tensor:
    if isinstance(norm, torch.nn.LayerNorm):
        mean = x.mean()
        var = ((x - mean)**2).mean()
        return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    # BatchNorm in eval mode: running statistics, one sample at a time.
    assert not norm.training, 'the per-sample reference needs BN in eval mode'
    return ((x - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps)
            * norm.weight + norm.bias)


def _kr_next(layer, fused: Tensor, state: Tensor) -> Optional[Tensor]:
    """d_next = W_2 ReLU(LN(W_1 [h~; alpha~] + b_1)) + b_2, or None."""
    if layer.kr_generator is None:
        return None
    krg = layer.kr_generator
    hidden = torch.relu(_norm(_linear(torch.cat([fused, state]), krg.fc1),
                              krg.norm))
    return _linear(hidden, krg.fc2)


def _with_d(h: Tensor, d: Optional[Tensor]) -> Tensor:
    return h if d is None else torch.cat([d, h])


def reference_attention(layer, h: Tensor, d: Optional[Tensor]
                        ) -> Tuple[Dict[str, Tensor], Optional[Tensor]]:
    """One sample of a candidate-mixing layer: h (C_in,), d (D,) ->
    attentions by head name, d_next (D,).

    h~ = ReLU(norm(W_F [d; h] + b_F)) (ODConv), ReLU(W_F [d; h] + b_F)
    (DyConv) or [d; h] (CondConv); logit_j = W_j h~ + b_j; attention_j =
    sigmoid(logit_j / T), softmax over the kernels for ODConv and DyConv,
    sigmoid without T for CondConv's routing.
    """
    fusion, generator = layer.fusion, layer.generator
    z = _with_d(h, d)
    if layer.method == 'odconv':
        z = torch.relu(_norm(_linear(z, fusion.fc), fusion.norm))
    elif layer.method == 'dyconv':
        z = torch.relu(_linear(z, fusion.fc))
    temperature = getattr(generator, 'temperature', 1.)
    logits, att = [], {}
    for name, head in generator.heads.items():
        logit = _linear(z, head)
        logits.append(logit)
        if name == 'kernel' and layer.method != 'condconv':
            att[name] = torch.exp(logit / temperature) / torch.exp(
                logit / temperature).sum()
        else:
            att[name] = 1 / (1 + torch.exp(-logit / temperature))
    return att, _kr_next(layer, z, torch.cat(logits))


def _sample_kernel(layer, att: Dict[str, Tensor]) -> Tuple[Tensor, Tensor]:
    """W_b (C_out, C_in/g, ...) with every attention folded in, and b_b."""
    weight = layer.weight
    num = weight.size(0)
    a = att.get('kernel', torch.ones(num, dtype=weight.dtype))
    kernel = sum(a[k] * weight[k] for k in range(num))
    if 'spatial' in att:
        kernel = kernel * att['spatial'].view(weight.shape[-2:])
    in_per_group = weight.size(2)
    out_per_group = layer.out_channels // getattr(layer, 'groups', 1)
    if 'channel' in att:
        # output o of group g reads input channels g*C_in/g .. (g+1)*C_in/g
        group = torch.arange(layer.out_channels) // out_per_group
        index = group[:, None] * in_per_group + torch.arange(in_per_group)
        kernel = kernel * att['channel'][index].view(
            *index.shape, *([1] * (kernel.dim() - 2)))
    if 'filter' in att:
        kernel = kernel * att['filter'].view(-1, *([1] * (kernel.dim() - 1)))
    bias = torch.zeros(layer.out_channels, dtype=weight.dtype)
    if layer.bias is not None:
        bias = sum(a[k] * layer.bias[k] for k in range(num))
    return kernel, bias


def _sample_rows(x: Tensor, samples: Optional[int]) -> List[Tensor]:
    """Each sample's rows of x: x[b] alone, or with ``samples`` B given,
    rows b*n ... b*n + n - 1 of the (B*n, ...) input."""
    if samples is None:
        return [x[b:b + 1] for b in range(x.size(0))]
    n = x.size(0) // samples
    return [x[b * n:(b + 1) * n] for b in range(samples)]


def reference_dynamic_conv2d(layer, x: Tensor, d: Optional[Tensor] = None,
                             samples: Optional[int] = None,
                             conv: Optional[torch.nn.Conv2d] = None
                             ) -> Tuple[Tensor, Optional[Tensor]]:
    """x (B, C_in, H, W), d (B, D) -> y (B, C_out, H', W'), d_next (B, D).

    The bias is added after the filter attention (it is not scaled by it).
    With ``samples`` B, x is (B*n, C_in, H, W), each sample's n rows in a
    row: h is the mean over all of a sample's rows and positions, and its
    kernel serves each of its rows.
    ``conv``: a static conv whose padding (and padding mode) each sample's
    kernel is applied with, e.g. the one the layer was made from; default:
    the layer's own zero padding.
    """
    outs, d_nexts = [], []
    for b, rows in enumerate(_sample_rows(x, samples)):
        att, d_next = reference_attention(
            layer, rows.mean(dim=(0, 2, 3)), None if d is None else d[b])
        kernel, bias = _sample_kernel(layer, att)
        if conv is None:
            outs.append(
                F.conv2d(rows, kernel, bias, layer.stride, layer.padding,
                         layer.dilation, layer.groups))
        else:
            outs.append(
                torch.func.functional_call(conv, dict(weight=kernel,
                                                      bias=bias), rows))
        d_nexts.append(d_next)
    return torch.cat(outs), (None if d_nexts[0] is None else
                             torch.stack(d_nexts))


def reference_dynamic_linear(layer, x: Tensor, d: Optional[Tensor] = None,
                             samples: Optional[int] = None
                             ) -> Tuple[Tensor, Optional[Tensor]]:
    """x (B, *, C_in), d (B, D) -> y (B, *, C_out), d_next (B, D); h is the
    mean over every position of a sample. With ``samples`` B, x is (B*n,
    *, C_in), each sample's n rows in a row, as for
    :func:`reference_dynamic_conv2d`."""
    outs, d_nexts = [], []
    for b, rows in enumerate(_sample_rows(x, samples)):
        att, d_next = reference_attention(
            layer, rows.reshape(-1, rows.size(-1)).mean(dim=0),
            None if d is None else d[b])
        weight, bias = _sample_kernel(layer, att)
        outs.append(rows @ weight.t() + bias)
        d_nexts.append(d_next)
    return torch.cat(outs), (None if d_nexts[0] is None else
                             torch.stack(d_nexts))


def reference_odconv2d(layer, x: Tensor) -> Tensor:
    """ODConv (Li et al., ICLR 2022) as its authors' code computes it, with
    the batch folded into groups and BatchNorm over the batch:

    a = ReLU(BN(W_fc · GAP(x))); c, f, s = sigmoid(W_· a / T);
    k = softmax(W_k a / T); y = f ⊙ conv(c ⊙ x, Σ_k k_k (s ⊙ W_k)).

    ``layer`` must be a DynamicConv2d with ``kr_dims=0`` and ``norm='bn'``.
    """
    b, c, h, w = x.shape
    fusion, generator = layer.fusion, layer.generator
    a = torch.relu(fusion.norm(x.mean(dim=(2, 3)) @ fusion.fc.weight.t()))
    heads, temperature = generator.heads, generator.temperature
    ones = torch.ones(b, 1, dtype=x.dtype)
    channel = torch.sigmoid(heads['channel'](a) / temperature)
    filt = (torch.sigmoid(heads['filter'](a) / temperature)
            if 'filter' in heads else ones)
    spatial = (torch.sigmoid(heads['spatial'](a) / temperature)
               if 'spatial' in heads else ones)
    kernel = (torch.softmax(heads['kernel'](a) / temperature, dim=1)
              if 'kernel' in heads else ones)
    kh, kw = layer.kernel_size
    weight = (spatial.view(b, 1, 1, 1, kh, kw) * kernel.view(b, -1, 1, 1, 1, 1)
              * layer.weight.unsqueeze(0)).sum(dim=1)
    out = F.conv2d((x * channel.view(b, c, 1, 1)).reshape(1, -1, h, w),
                   weight.reshape(-1, c // layer.groups, kh, kw), None,
                   layer.stride, layer.padding, layer.dilation,
                   layer.groups * b)
    out = out.view(b, layer.out_channels, *out.shape[-2:])
    return out * filt.view(b, -1, 1, 1)


def _dcd_gate(x: Tensor) -> Tensor:
    return torch.clamp(x + 3, 0, 6) / 3


def _bn_affine(bn) -> Tuple[Tensor, Tensor]:
    """BatchNorm in eval mode as a * x + c per channel."""
    assert not bn.training, 'use _batch_affine for BN in training mode'
    a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return a, bn.bias - a * bn.running_mean


def _batch_affine(bn, u: Tensor) -> Tuple[Tensor, Tensor]:
    """BatchNorm in training mode on the batch u (N, C, positions) as
    a * x + c per channel: mean and biased variance over N and the
    positions."""
    mean = u.mean(dim=(0, 2))
    var = ((u - mean[:, None])**2).mean(dim=(0, 2))
    a = bn.weight / torch.sqrt(var + bn.eps)
    return a, bn.bias - a * mean


def reference_dcd_conv2d(layer, x: Tensor, d: Optional[Tensor] = None
                         ) -> Tuple[Tensor, Optional[Tensor]]:
    """DCD (Li et al., ICLR 2021) as the paper writes it, one sample at a time:
    W(x) = Λ(x) W_0 + P Φ'(x) Q^T, a dense per-sample kernel.

    h = the input pooled to p x p; z = W_F [d; h]; h~ = z ⊙ hsig(W_SE z);
    Λ = hsig(W_Λ h~), Φ = W_Φ h~ (L x L), hsig(t) = ReLU6(t + 3) / 3. With
    the norms as affine maps BN_i(u) = a_i u + c_i the latent path is
    affine, P((a_2 Φ + I)(a_1 Q^T x + c_1) + c_2): its matrix joins W_0 at
    the centre tap of the kernel (Q and P are 1x1 with the conv's stride)
    and its offset is a per-sample bias. In eval mode a_i, c_i come from the
    running statistics; in training mode from the batch's: those of Q^T x
    for BN_1, and those of Φ BN_1(Q^T x) for BN_2, over the samples and
    positions.
    """
    fusion, generator = layer.fusion, layer.generator
    pool = layer.sizes.pool
    q = layer.q.weight[:, :, 0, 0]
    p = layer.p.weight[:, :, 0, 0]
    dim = q.shape[0]
    eye = torch.eye(dim, dtype=x.dtype)
    fused, phis, scales = [], [], []
    for b in range(x.size(0)):
        h = F.adaptive_avg_pool2d(x[b:b + 1], pool).flatten()
        z = fusion.fc.weight @ _with_d(h, None if d is None else d[b])
        fused.append(z * _dcd_gate(fusion.se.weight @ z))
        phis.append(generator.phi.weight @ fused[-1])
        scales.append(generator.scale.weight @ fused[-1])
    if layer.bn1.training:
        # Q^T x at the conv's output positions: a 1x1 conv with its stride
        strided = x[:, :, ::layer.stride[0], ::layer.stride[1]].flatten(2)
        latent = torch.stack([q @ strided[b] for b in range(x.size(0))])
        a1, c1 = _batch_affine(layer.bn1, latent)
        mixed = torch.stack([
            phis[b].view(dim, dim) @ (a1[:, None] * latent[b] + c1[:, None])
            for b in range(x.size(0))
        ])
        a2, c2 = _batch_affine(layer.bn2, mixed)
    else:
        a1, c1 = _bn_affine(layer.bn1)
        a2, c2 = _bn_affine(layer.bn2)
    outs, d_nexts = [], []
    for b in range(x.size(0)):
        phi = phis[b].view(dim, dim)
        mix = (a2[:, None] * phi + eye)
        kernel = _dcd_gate(scales[b])[:, None, None, None] * layer.weight
        centre = tuple(k // 2 for k in layer.kernel_size)
        kernel = kernel.clone()
        kernel[:, :, centre[0], centre[1]] += p @ mix @ (a1[:, None] * q)
        bias = p @ (mix @ c1 + c2)
        if layer.bias is not None:
            bias = bias + layer.bias
        outs.append(
            F.conv2d(x[b:b + 1], kernel, bias, layer.stride, layer.padding,
                     layer.dilation))
        d_nexts.append(
            _kr_next(layer, fused[b], torch.cat([phis[b], scales[b]])))
    return torch.cat(outs), (None if d_nexts[0] is None else
                             torch.stack(d_nexts))


def reference_weightnet_conv2d(layer, x: Tensor, d: Optional[Tensor] = None
                               ) -> Tuple[Tensor, Optional[Tensor]]:
    """WeightNet (Ma et al., ECCV 2020), one sample at a time:
    x_gap = W_r [d; GAP(x)] + b_r; g = sigmoid(W_1 x_gap + b_1); the kernel
    is the grouped FC of g, group j mapping its gates g_j to its block of
    kernel weights, W_2^(j) g_j; then a plain conv."""
    fusion, generator = layer.fusion, layer.generator
    fc2 = generator.fc2
    outs, d_nexts = [], []
    for b in range(x.size(0)):
        x_gap = _linear(_with_d(x[b].mean(dim=(1, 2)),
                                None if d is None else d[b]), fusion.fc)
        logits = _linear(x_gap, generator.fc1)
        gates = torch.sigmoid(logits).view(fc2.groups, -1)
        rows = fc2.weight.view(fc2.groups, -1, fc2.weight.shape[1])
        kernel = torch.cat([rows[j] @ gates[j] for j in range(fc2.groups)])
        outs.append(
            F.conv2d(x[b:b + 1], kernel.view(generator.kernel_shape),
                     layer.bias, layer.stride, layer.padding, layer.dilation,
                     layer.groups))
        d_nexts.append(_kr_next(layer, x_gap, logits))
    return torch.cat(outs), (None if d_nexts[0] is None else
                             torch.stack(d_nexts))


def _kw_logits(layer, fused: Tensor) -> Tensor:
    """z (m, n + 1): KernelWarehouse's logits of one sample. With a
    non-local basis, z_i = [B u_i[:s]; v_i; B u_i[s:]; z0_i] + b for the
    layer's own logits v_i, basis logits u_i, zero-cell logit z0_i, s the
    layer's first cell and B the basis map."""
    generator = layer.generator
    m, n = generator.mixtures, generator.cells
    z = _linear(fused, generator.fc)
    if generator.basis is None:
        return z.view(m, n + 1)
    rows = []
    for row in z.view(m, -1):
        local = row[:generator.num_local]
        others = generator.basis.weight @ row[generator.num_local:-1]
        s = generator.start
        rows.append(torch.cat([others[:s], local, others[s:], row[-1:]]))
    return torch.stack(rows) + generator.basis_bias.view(m, n + 1)


def reference_kw_conv2d(layer, x: Tensor, d: Optional[Tensor] = None
                        ) -> Tuple[Tensor, Optional[Tensor]]:
    """KernelWarehouse (Li and Yao, ICML 2024) as the paper writes it, one
    sample at a time:

    h~ = ReLU(norm(W_F [d; h] + b_F)); z = W_G h~ + b_G, n + 1 logits per
    mixture i (the warehouse's n cells and the zero cell);
    α_i = (1 - τ) z_i / (Σ_j |z_ij| + 1e-3) + τ β_i (β_i one-hot, the
    initial assignment), the zero cell's entry dropped; the cell
    w_i = Σ_j α_ij e_j; the kernel W[o·c_out + a, c·c_in + b, s] = w_i[a, b]
    for i = (s·G_out + o)·G_in + c; y = conv(x, W) + bias.
    """
    fusion, generator = layer.fusion, layer.generator
    alloc = layer.allocation
    cells = layer.cells.flatten(1)  # (n, c_out * c_in)
    g_out, g_in, positions = alloc.grid
    kh, kw = layer.kernel_size
    outs, d_nexts = [], []
    for b in range(x.size(0)):
        fused = torch.relu(_norm(
            _linear(_with_d(x[b].mean(dim=(1, 2)),
                            None if d is None else d[b]), fusion.fc),
            fusion.norm))
        z = _kw_logits(layer, fused)
        tau = generator.temperature
        att = (1 - tau) * z / (z.abs().sum(dim=1, keepdim=True) + 1e-3) \
            + tau * generator.assignment
        kernel = torch.zeros(layer.out_channels,
                             layer.in_channels // layer.groups, kh * kw,
                             dtype=x.dtype)
        for i in range(alloc.mixtures):
            s, o, c = i // (g_out * g_in), i // g_in % g_out, i % g_in
            cell = (att[i, :-1] @ cells).view(alloc.cell_out, alloc.cell_in)
            kernel[o * alloc.cell_out:(o + 1) * alloc.cell_out,
                   c * alloc.cell_in:(c + 1) * alloc.cell_in, s] = cell
        outs.append(
            F.conv2d(x[b:b + 1], kernel.view(*kernel.shape[:2], kh, kw),
                     layer.bias, layer.stride, layer.padding, layer.dilation,
                     layer.groups))
        d_nexts.append(_kr_next(layer, fused, z.flatten()))
    return torch.cat(outs), (None if d_nexts[0] is None else
                             torch.stack(d_nexts))
