# MobileNetV2 0.5x + DyConv (4x) on ImageNet-1k, 8 GPUs x 32 images: the
# dynamic layers of ODConv with only the softmax attention over 4 kernels.
_base_ = [
    '../_base_/models/odconv_mobilenet_v2_050.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../_base_/schedules/odconv_mobilenet_v2_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(kernel_num=4, attention='dyconv'))
