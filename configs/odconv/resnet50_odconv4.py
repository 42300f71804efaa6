# ResNet-50 + ODConv (4x) on ImageNet-1k, 8 GPUs x 32 images.
_base_ = [
    '../_base_/models/odconv_resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/odconv_resnet_imagenet.py',
    '../_base_/default_runtime.py',
]

# dropout 0.2 as ODConv's README trains ResNet-18 4x (its only 4x ResNet
# command) and configs/odconv/resnet18_odconv4.py does
model = dict(backbone=dict(kernel_num=4), head=dict(dropout=0.2))
