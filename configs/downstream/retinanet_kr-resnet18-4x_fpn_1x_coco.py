# RetinaNet with a KR ResNet-18 (4x) backbone and FPN on COCO (MMDetection 3.x,
# 8 GPUs x 2 images, 1x schedule). mmkr registers KRBackbone in mmpretrain's
# registry, hence the scope prefix and the imports.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmkr', 'mmpretrain.models'], allow_failed_imports=False)

# A KR ResNet-18 (4x) ImageNet classifier checkpoint, which mmkr does not
# ship yet: docs/downstream.md makes it (train configs/kr/resnet18_kr4.py,
# then tools/model_converters/publish_model.py) or passes another with
# --cfg-options model.backbone.init_cfg.checkpoint=PATH. Its keys start with
# 'backbone.'; its d_L head and the last layer's KR generator are not used.
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

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
