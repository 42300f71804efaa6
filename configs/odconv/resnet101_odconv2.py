# ResNet-101 + ODConv (2x) as its authors build it (OSVAI/ODConv
# models/od_resnet.py, od_resnet101(kernel_num=2)), the widest ResNet-101 of
# their release. Its authors' ImageNet weights convert with
# tools/model_converters/odconv_to_mmkr.py (docs/converters.md).
_base_ = ['./resnet101_odconv1.py']

model = dict(backbone=dict(kernel_num=2))
