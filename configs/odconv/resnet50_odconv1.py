# ResNet-50 + ODConv (1x) as its authors build it (OSVAI/ODConv
# models/od_resnet.py, od_resnet50(kernel_num=1)): every conv of the
# bottlenecks dynamic, the stem and the shortcuts static. Its authors'
# ImageNet weights convert with tools/model_converters/odconv_to_mmkr.py
# (docs/converters.md); the training recipe is ResNet-18's.
_base_ = ['./resnet18_odconv1.py']

model = dict(
    backbone=dict(backbone=dict(depth=50)), head=dict(in_channels=2048))
