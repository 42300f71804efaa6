# UPerNet with a KR ResNet-18 (4x) backbone on ADE20K (MMSegmentation 1.x,
# 4 GPUs x 4 images, 160k iterations, 512x512 crops). See
# retinanet_kr-resnet18-4x_fpn_1x_coco.py for the backbone checkpoint.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(
    imports=['mmkr', 'mmpretrain.models'], allow_failed_imports=False)

# made as docs/downstream.md says, or set with --cfg-options
# model.backbone.init_cfg.checkpoint=PATH
pretrained = 'checkpoints/resnet18_kr4_in1k.pth'
# mmseg's norm for its ResNets: SyncBN, statistics trained
norm_cfg = dict(type='SyncBN', requires_grad=True)
crop_size = (512, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.KRBackbone',
        backbone=dict(
            type='mmpretrain.ResNet',
            depth=18,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=-1,
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch'),
        kernel_num=4,
        kr_dims=64,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    # heads as mmseg's upernet_r18_4xb4-160k_ade20k-512x512.py
    decode_head=dict(in_channels=[64, 128, 256, 512], num_classes=150),
    auxiliary_head=dict(in_channels=256, num_classes=150))
