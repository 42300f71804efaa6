"""Convert a DCD checkpoint of its authors into an mmkr checkpoint.

    python tools/model_converters/dcd_to_mmkr.py \
        resnet50_dcd.pth.tar checkpoints/resnet50_dcd_in1k

reads the file released at https://github.com/liyunsheng13/dcd (ResNet_dcd
or MobileNetV2_dcd, with or without --dropout) with weights_only=True, finds
the network from its tensors (or converts into --config), maps every tensor
by name (mmkr.models.utils.authors_checkpoints) and writes
DST-<sha256[:8]>.pth, whose path it prints last. The mmkr model then gives
the authors' model's logits.
"""
from mmkr.models.utils import dcd_network, run_converter

if __name__ == '__main__':
    run_converter('DCD', dcd_network, __doc__.split('\n')[0])
