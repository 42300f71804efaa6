# ViT-Tiny + ODConv (4x) on ImageNet-1k, 8 GPUs x 128 images.
_base_ = [
    '../_base_/models/odconv_vit_tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/deit_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(kernel_num=4))

train_dataloader = dict(batch_size=128)
