"""Convert an ODConv checkpoint of its authors into an mmkr checkpoint.

    python tools/model_converters/odconv_to_mmkr.py \
        od_resnet18_4xkernel.pth.tar checkpoints/resnet18_odconv4_in1k

reads the file released at https://github.com/OSVAI/ODConv (OD_ResNet-18/34/
50/101 or OD_MobileNetV2 0.5/0.75/1.0x, any K) with weights_only=True,
finds the network from its tensors (or converts into --config), maps every
tensor by name (mmkr.models.utils.authors_checkpoints) and writes
DST-<sha256[:8]>.pth, whose path it prints last. The mmkr model then gives
the authors' model's logits.
"""
from mmkr.models.utils import odconv_network, run_converter

if __name__ == '__main__':
    run_converter('ODConv', odconv_network, __doc__.split('\n')[0])
