# DCD-ResNet-18 on the digits (../_base_/models/dcd_resnet18.py: DCD's
# basic-block convs, the downsample convs static, DCD's dynamic classifier
# behind dropout 0.1), at the demo's quarter width and recipe. DCD has no
# temperature.
_base_ = [
    '../_base_/models/dcd_resnet18.py',
    '../_base_/digits_demo.py',
]

model = dict(
    backbone=dict(
        backbone=dict(stem_channels=16, base_channels=16),
        probe_size=(32, 32)),
    head=dict(num_classes=10, in_channels=128, topk=(1, )))
custom_hooks = [dict(type='AttentionStatsHook', interval=5)]
