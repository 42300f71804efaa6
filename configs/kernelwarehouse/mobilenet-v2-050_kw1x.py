# MobileNetV2 0.5x + KernelWarehouse (1x) on ImageNet-1k, the authors'
# recipe (configs/mobilenetv2_050/kw1x_mobilenetv2_050.json): 150 epochs of
# SGD, random-resized crop and flip only, no label smoothing.
_base_ = [
    '../_base_/models/kw_mobilenet_v2_050.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../_base_/schedules/kw_mobilenet_v2_imagenet.py',
    '../_base_/default_runtime.py',
]
