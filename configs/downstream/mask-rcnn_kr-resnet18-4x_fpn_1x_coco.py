# Mask R-CNN with a KR ResNet-18 (4x) backbone and FPN on COCO (MMDetection
# 3.x, 8 GPUs x 2 images, 1x schedule). For the backbone checkpoint see
# retinanet_kr-resnet18-4x_fpn_1x_coco.py.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmkr', 'mmpretrain.models'], allow_failed_imports=False)

# made as docs/downstream.md says, or set with --cfg-options
# model.backbone.init_cfg.checkpoint=PATH
pretrained = 'checkpoints/resnet18_kr4_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.KRBackbone',
        backbone=dict(
            type='mmpretrain.ResNet',
            depth=18,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=1,
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=True,
            style='pytorch'),
        kernel_num=4,
        kr_dims=64,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))
