"""What the dynamic convolution and the dynamic linear layer share: the
attention path h -> h~ -> (alpha, d_{i+1}) and the hand-over of d."""
from typing import Any, Optional, Tuple

import torch
import torch.nn as nn

from ...utils.validation import check_int
from .kernel_generator import mixing_attention
from .registry import get_method, method_of_code
from .representation import KRGenerator


class KRChain:
    """Carries the kernel representation d from one KR layer to the next
    during one forward pass of a network.

    Every dynamic layer of a network holds the same chain: a layer reads d_i
    from it and writes d_{i+1} back, so d follows the order in which the
    layers actually run.

    ``batch`` is B, the number of samples of the pass, where the network
    knows it: a layer that sees B*n rows (windows, heads or tokens of each
    sample folded into the batch) then knows which rows are whose.
    """
    __slots__ = ('d', 'batch')

    def __init__(self):
        self.d: Optional[torch.Tensor] = None
        self.batch: Optional[int] = None


class DynamicLayer(nn.Module):
    """Base of the KR layers: h~ = F(cat[d, h]), alpha = KG(h~),
    d_{i+1} = K(cat[h~, alpha~]).

    A subclass is one dynamic-conv method (ODConv, DyConv, CondConv, DCD,
    WeightNet): it sets :attr:`fusion` (F: ``fusion(h, d) -> h~``, with
    ``fusion.out_dims``) and :attr:`generator` (KG: ``generator(h~) ->
    alpha~``, the state handed to K, of ``generator.state_dims``, and
    ``generator.activate(alpha~)``, the attentions the layer applies), then
    calls :meth:`build_kr_generator`; it computes h from its input and
    applies the attentions in :meth:`forward_kr`. The KR path (d into F,
    d_{i+1} out of K) is the same for every method.

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        method (str): the dynamic-conv method, a name in the method
            registry (:data:`~mmkr.models.layers.registry.METHODS`).
        kr_dims (int): D, the size of d; 0 switches KR off (the plain
            method).
    """

    def __init__(self, in_channels: int, out_channels: int, method: str,
                 kr_dims: int = 0):
        super().__init__()
        code = get_method(method).code
        check_int(type(self).__name__, 'kr_dims', kr_dims, 0,
                  'an integer >= 0 (0: no KR)')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.method = method
        self.kr_dims = kr_dims
        self.register_buffer('method_code', torch.tensor(code))
        self.chain: Optional[KRChain] = None
        # Set where the layer's input was found sample-major, sample b's
        # rows being b*n ... b*n + n - 1 (see :meth:`samples_in`).
        self.batch_folded = False

    def build_kr_generator(self, generate_kr: bool = True):
        """K over cat[h~, alpha~] of this layer's F and KG, where KR is on.

        ``generate_kr=False``: the last KR layer of a network whose d_L
        nobody reads builds none, so that no parameter goes without a
        gradient.
        """
        self.kr_generator = (
            KRGenerator(self.fusion.out_dims + self.generator.state_dims,
                        self.kr_dims)
            if self.kr_dims and generate_kr else None)

    def _where(self, prefix: str) -> str:
        return (f'dynamic layer {prefix.rstrip(".")!r} '
                f'({type(self).__name__}, method={self.method!r}')

    def check_method_code(self, state_dict: dict, prefix: str) -> None:
        """Raise, naming both methods, where ``state_dict`` holds a layer of
        another method at ``prefix``."""
        saved = state_dict.get(prefix + 'method_code')
        if saved is not None and int(saved) != self.method_code:
            other = method_of_code(int(saved))
            raise ValueError(
                f'checkpoint does not match {self._where(prefix)}): it holds '
                f'a {other.name if other else "unknown"!r} layer there, this '
                f'model a {self.method!r} one')

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # PyTorch reports a shape mismatch as one entry in a list that
        # mmengine's non-strict loading only logs; a checkpoint with other
        # kernels would then run with this layer's random ones.
        where = self._where(prefix)
        self.check_method_code(state_dict, prefix)
        for name, tensor in self.state_dict().items():
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != tensor.shape:
                raise ValueError(
                    f'checkpoint does not match {where}, kernel_num='
                    f'{getattr(self, "kernel_num", 1)}, kr_dims='
                    f'{self.kr_dims}): {prefix + name} has shape '
                    f'{tuple(saved.shape)} in the checkpoint and '
                    f'{tuple(tensor.shape)} in the model')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def samples_in(self, rows: int) -> int:
        """B, the number of samples in an input of ``rows`` rows.

        ``rows`` itself unless the chain knows the batch size B of the pass
        and this layer is :attr:`batch_folded`: then the rows are B*n, sample
        b's n rows (its windows, heads or tokens) one after another.
        """
        batch = None if self.chain is None else self.chain.batch
        if batch is None or rows == batch:
            return rows
        if not self.batch_folded or rows % batch:
            raise ValueError(
                f'{type(self).__name__}({self.in_channels}, '
                f'{self.out_channels}) got an input of {rows} rows in a '
                f'pass of {batch} samples, but '
                + ('its input was not found sample-major when the network '
                   'was built, so it cannot tell whose rows they are'
                   if not self.batch_folded else
                   f'{rows} is not a multiple of {batch}'))
        return batch

    def attend(self, h: torch.Tensor, d: Optional[torch.Tensor] = None
               ) -> Tuple[Any, Optional[torch.Tensor]]:
        """h (B*n, C), d (B, D) -> the activated attentions, one row per row
        of h, and d_{i+1} (B, D).

        Where the rows of h are B samples' n equal parts each
        (:meth:`samples_in`), the sample's h is the mean of its rows' (for a
        GAP, the mean over all of its positions), and its attentions serve
        each of its rows.
        """
        rows = h.shape[0]
        samples = self.samples_in(rows)
        if samples != rows:
            h = h.view(samples, rows // samples, -1).mean(dim=1)
        fused = self.fusion(h, d)
        logits = self.generator(fused)
        d_next = None
        if self.kr_generator is not None:
            d_next = self.kr_generator(torch.cat([fused, logits], dim=1))
        att = self.generator.activate(logits)
        if samples != rows:
            att = type(att)(*(None if a is None else a.repeat_interleave(
                rows // samples, dim=0) for a in att))
        return att, d_next

    def forward_kr(self, x: torch.Tensor, d: Optional[torch.Tensor] = None
                   ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x, d_i -> output, d_{i+1}."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Drop-in for the static layer: d comes from and goes to the chain."""
        if self.chain is None:
            return self.forward_kr(x)[0]
        out, self.chain.d = self.forward_kr(x, self.chain.d)
        return out


class MixingLayer(DynamicLayer):
    """Base of the candidate-mixing layers (ODConv, DyConv, CondConv): K
    candidate kernels and the attentions of :class:`KernelGenerator`,
    built by :meth:`build_mixing_attention` from the subclass's
    constructor."""

    def build_mixing_attention(self, kernel_positions: int,
                               kernel_num: int = 1, depthwise: bool = False,
                               method: str = 'odconv',
                               reduction: Optional[float] = None,
                               generate_kr: bool = True, norm: str = 'ln',
                               fusion_bias: bool = False):
        """F, KG and K of this layer.

        Args:
            kernel_positions (int): k*k of the candidate kernels.
            kernel_num (int): K, the number of candidate kernels.
            depthwise (bool): a depthwise conv has no filter attention.
            method (str): one of :data:`MIXING_METHODS`.
            reduction (float, optional): A = max(C_in * reduction, minimum);
                None: the method's own (ODConv 1/16, DyConv 1/4).
            generate_kr (bool): see :meth:`build_kr_generator`.
            norm (str): the norm of ODConv's F, 'ln' (any batch size) or
                'bn' (ODConv's).
            fusion_bias (bool): a bias in ODConv's F (see
                :func:`mixing_attention`).
        """
        check_int(type(self).__name__, 'kernel_num', kernel_num, minimum=1)
        self.kernel_num = kernel_num
        self.fusion, self.generator = mixing_attention(
            method, self.in_channels, self.out_channels, kernel_positions,
            kernel_num, depthwise, self.kr_dims, reduction, norm,
            fusion_bias)
        self.build_kr_generator(generate_kr)
