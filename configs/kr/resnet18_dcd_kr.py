# ResNet-18 + KR on DCD (beyond the poster): DCD's dynamic layers (see
# ../_base_/models/dcd_resnet18.py) with the KR path, d_0 from the image, and
# the KR head over [GAP(feature), d_L] in place of DCD's dynamic classifier.
_base_ = [
    '../_base_/models/kr_resnet18.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/odconv_resnet_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        method='dcd',
        method_cfg=dict(layout='resnet_basic'),
        static_layers=['conv1', '*.downsample.*']),
    head=dict(dropout=0.1))
# DCD has no temperature to anneal.
custom_hooks = []
