# ResNet-50 + KR (4x) on ImageNet-1k, 8 GPUs x 32 images.
_base_ = [
    '../_base_/models/kr_resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/odconv_resnet_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(kernel_num=4))
