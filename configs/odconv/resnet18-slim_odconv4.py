# ResNet-18 slim + ODConv (4x) on ImageNet-1k, 8 GPUs x 32 images.
_base_ = [
    '../_base_/models/odconv_resnet18_slim.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/odconv_resnet_imagenet.py',
    '../_base_/default_runtime.py',
]

# ODConv's README trains ResNet-18 4x with --dropout 0.2.
model = dict(backbone=dict(kernel_num=4), head=dict(dropout=0.2))
