# ResNet-18 + KernelWarehouse (1x) on ImageNet-1k, the authors' recipe
# (configs/resnet18/kw1x_resnet18.json on the ConvNeXt recipe of main.py):
# 300 epochs of AdamW at batch 4096, RandAugment, random erasing 0.25,
# Mixup 0.8, CutMix 1.0, label smoothing 0.1, drop-path 0.1.
_base_ = [
    '../_base_/models/kw_resnet18.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/kw_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(backbone=dict(drop_path_rate=0.1)),
    # kw_resnet.py leaves its classifier at PyTorch's default initialisation
    head=dict(
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        init_cfg=None),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))

train_dataloader = dict(batch_size=128)
