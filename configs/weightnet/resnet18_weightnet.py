# ResNet-18 + WeightNet on ImageNet-1k, 8 GPUs x 32 images (the choices are in
# ../_base_/models/weightnet_resnet18.py). Recipe: ODConv's ResNet training
# (SGD lr 0.1, 100 epochs, steps at 30/60/90), with which ODConv re-ran
# WeightNet; WeightNet has no temperature.
_base_ = [
    '../_base_/models/weightnet_resnet18.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/odconv_resnet_imagenet.py',
    '../_base_/default_runtime.py',
]

custom_hooks = []
