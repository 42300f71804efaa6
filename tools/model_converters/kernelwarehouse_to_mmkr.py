"""Convert a KernelWarehouse checkpoint of its authors into an mmkr checkpoint.

    python tools/model_converters/kernelwarehouse_to_mmkr.py \
        kw1d4x_resnet18.pth checkpoints/resnet18_kw1d4x_in1k [--ema]

reads a file released at https://github.com/OSVAI/KernelWarehouse (ResNet-18
1/4x..4x, ResNet-50 1/2x, 1x, 4x, MobileNetV2 0.5x and 1.0x at 1x and 4x,
ConvNeXt-T 1x) with weights_only=True, takes its 'model' (or with --ema
its 'model_ema'), finds the network from its tensors (or converts into
--config), maps every tensor by name, the warehouses included
(mmkr.models.utils.authors_checkpoints), and writes DST-<sha256[:8]>.pth,
whose path it prints last. The mmkr model then gives the authors' model's
logits, at τ = 0 as after the authors' training.
"""
from mmkr.models.utils import kw_network, run_converter

if __name__ == '__main__':
    run_converter('KernelWarehouse',
                  kw_network,
                  __doc__.split('\n')[0],
                  state_key='model',
                  ema_key='model_ema')
