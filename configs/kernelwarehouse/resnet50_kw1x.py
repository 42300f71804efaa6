# ResNet-50 + KernelWarehouse (1x) on ImageNet-1k, the authors' recipe
# (configs/resnet50/kw1x_resnet50.json, the ConvNeXt recipe of main.py; see
# ./resnet18_kw1x.py).
_base_ = [
    '../_base_/models/kw_resnet50.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/kw_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(backbone=dict(drop_path_rate=0.1)),
    head=dict(
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))

train_dataloader = dict(batch_size=128)
