# MobileNetV2 1.0x + KR (1x) on ImageNet-1k, 8 GPUs x 32 images.
_base_ = [
    '../_base_/models/kr_mobilenet_v2.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../_base_/schedules/odconv_mobilenet_v2_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(kernel_num=1))
