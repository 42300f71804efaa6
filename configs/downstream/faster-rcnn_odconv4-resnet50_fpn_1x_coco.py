# Faster R-CNN with an ODConv (4x) ResNet-50 backbone and FPN on COCO
# (MMDetection 3.x, 8 GPUs x 2 images, 1x schedule). The settings are
# ODConv's own
# object_detection/configs/odconv/faster_rcnn_odconv4x_r50_fpn_1x_coco.py
# (MMDetection 2.x) in MMDetection 3.x: frozen first stage, BatchNorm in eval
# mode. The backbone checkpoint is the ImageNet classifier's of
# configs/odconv/resnet50_odconv4.py, loaded with prefix='backbone.'.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmkr', 'mmpretrain.models'], allow_failed_imports=False)

pretrained = 'checkpoints/resnet50_odconv4_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.KRBackbone',
        backbone=dict(
            type='mmpretrain.ResNet',
            depth=50,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            frozen_stages=1,
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=True,
            style='pytorch'),
        method='odconv',
        kernel_num=4,
        with_kr=False,
        attention_norm='bn',
        static_layers=['conv1', '*.downsample.*'],
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[256, 512, 1024, 2048]))
