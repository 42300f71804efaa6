# Faster R-CNN with a KR (4x) MobileNetV2 1.0x backbone and FPN on COCO
# (MMDetection 3.x, 8 GPUs x 2 images, 1x schedule). The settings are the
# ODConv (4x) config's, with KR layers: ODConv's
# object_detection/configs/odconv/faster_rcnn_odconv4x_mobilenetv2_100_fpn_1x_coco.py
# (MMDetection 2.x) in MMDetection 3.x: the outputs of 24, 32, 96 and 1280
# channels, frozen first stage, BatchNorm in eval mode. The backbone
# checkpoint is the ImageNet classifier's of configs/kr/mobilenet-v2_kr4.py,
# loaded with prefix='backbone.'.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_detection.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmkr', 'mmpretrain.models'], allow_failed_imports=False)

pretrained = 'checkpoints/mobilenet-v2_kr4_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.KRBackbone',
        backbone=dict(
            type='mmpretrain.MobileNetV2',
            widen_factor=1.0,
            out_indices=(1, 2, 4, 7),
            frozen_stages=1,
            norm_eval=True),
        kernel_num=4,
        kr_dims=64,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[24, 32, 96, 1280]))
