# ODConv ResNet-18 slim (see resnet18_slim.py for the widths).
_base_ = './odconv_resnet18.py'

model = dict(
    backbone=dict(backbone=dict(base_channels=55, stem_channels=55)),
    head=dict(in_channels=440))
