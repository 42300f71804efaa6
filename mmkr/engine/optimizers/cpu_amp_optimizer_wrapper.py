from contextlib import contextmanager
from typing import Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper
from mmengine.runner.amp import autocast
from mmpretrain.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Mixed precision on the CPU: the forward pass and the loss run under
    bfloat16 autocast, the optimizer steps on float32 parameters.

    ``tools/train.py --amp`` picks this wrapper where there is no CUDA,
    because mmengine's ``AmpOptimWrapper`` requires CUDA, NPU or MLU for its
    float16 ``GradScaler``. bfloat16 keeps float32's exponent range, so
    gradients need no loss scaling; the KR layers keep their FFT and
    attention softmax in float32 under autocast themselves.

    Args:
        dtype (str or torch.dtype): the autocast dtype, bfloat16 (the CPU's
            fast mixed-precision type).
        **kwargs: as for mmengine's :class:`~mmengine.optim.OptimWrapper`.
    """

    def __init__(self, *args, dtype: Union[str, torch.dtype] = 'bfloat16',
                 **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, None)
        if dtype is not torch.bfloat16:
            raise ValueError(
                f'CPUAmpOptimWrapper autocasts to bfloat16, got dtype='
                f'{dtype}; float16 on CPU would need a loss scaler, which '
                f'mmengine provides only on CUDA (AmpOptimWrapper)')
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        with super().optim_context(model), autocast(
                device_type='cpu', dtype=self.cast_dtype):
            yield
