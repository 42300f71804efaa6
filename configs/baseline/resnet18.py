# ResNet-18 on ImageNet-1k, 8 GPUs x 32 images: mmpretrain's own config (its
# imagenet_bs256 schedule is ODConv's ResNet recipe).
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'

custom_imports = dict(imports=['mmkr'], allow_failed_imports=False)
