# MobileNetV2 1.0x on ImageNet-1k, 8 GPUs x 32 images, ODConv's MobileNetV2
# recipe (150 epochs, cosine; mmpretrain's own config trains 300).
_base_ = [
    'mmpretrain::_base_/models/mobilenet_v2_1x.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../_base_/schedules/odconv_mobilenet_v2_imagenet.py',
    '../_base_/default_runtime.py',
]

# A static network has no attention temperature to anneal.
custom_hooks = []
