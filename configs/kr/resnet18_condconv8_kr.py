# ResNet-18 + KR on CondConv (8x) (beyond the poster): CondConv's dynamic
# layers (see ../condconv/resnet18_condconv8.py) with the KR path: the routing
# reads cat[d, GAP(X)], d_0 comes from the image, and the KR head classifies
# [GAP(feature), d_L].
_base_ = [
    '../_base_/models/kr_resnet18.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/odconv_resnet_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        method='condconv',
        kernel_num=8,
        static_layers=['conv1', '*.downsample.*']))
# CondConv's routing has no temperature to anneal.
custom_hooks = []
