# MobileNetV2 0.75x + ODConv (4x) as its authors build it (OSVAI/ODConv
# models/od_mobilenetv2.py, od_mobilenetv2_075(kernel_num=4)). Its authors'
# ImageNet weights convert with tools/model_converters/odconv_to_mmkr.py
# (docs/converters.md).
_base_ = ['./mobilenet-v2-050_odconv4.py']

model = dict(backbone=dict(backbone=dict(widen_factor=0.75)))
