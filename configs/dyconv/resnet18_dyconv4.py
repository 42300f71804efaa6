# ResNet-18 + DyConv (4x) on ImageNet-1k, 8 GPUs x 32 images. Recipe: the
# DyConv paper's ResNet training as ODConv re-ran it for its comparison (SGD
# lr 0.1, batch 256, 100 epochs, steps at 30/60/90) with the paper's
# temperature, 30 -> 1 over the first 10 epochs.
_base_ = [
    '../_base_/models/dyconv_resnet18.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/odconv_resnet_imagenet.py',
    '../_base_/default_runtime.py',
]
