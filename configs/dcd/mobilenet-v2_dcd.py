# MobileNetV2 1.0x + DCD as its authors build it (liyunsheng13/dcd
# models/imagenet/mobilenetv2_dcd.py, mobilenetv2_dcd(width_mult=1.0) with
# --fc-squeeze 16, as their README evaluates the released weights). Those
# weights convert with tools/model_converters/dcd_to_mmkr.py
# (docs/converters.md).
_base_ = ['./mobilenet-v2-050_dcd.py']

model = dict(
    backbone=dict(
        backbone=dict(widen_factor=1.0), method_cfg=dict(fc_squeeze=16)))
