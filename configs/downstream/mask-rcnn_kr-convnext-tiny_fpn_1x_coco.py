# Mask R-CNN with a KR ConvNeXt-Tiny (1x) backbone and FPN on COCO
# (MMDetection 3.x, 8 GPUs x 2 images, 1x schedule). The backbone options are
# those of MMDetection's mask-rcnn_convnext-t-p4-w7_fpn_amp-ms-crop-3x_coco.py,
# its optimizer AdamW (lr 1e-4, weight decay 0.05) without the layer-wise
# decay there: MMDetection's decay constructor finds ConvNeXt's stages by
# their names in a bare ConvNeXt, which the KR wrapper prefixes. The backbone
# checkpoint is a KR ConvNeXt-Tiny classifier's (configs/kr/
# convnext-tiny_kr1.py), loaded with prefix='backbone.'.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(
    imports=['mmkr', 'mmpretrain.models'], allow_failed_imports=False)

pretrained = 'checkpoints/convnext-tiny_kr1_in1k.pth'

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.KRBackbone',
        backbone=dict(
            type='mmpretrain.ConvNeXt',
            arch='tiny',
            out_indices=[0, 1, 2, 3],
            drop_path_rate=0.4,
            layer_scale_init_value=1.0,
            gap_before_final_norm=False),
        kernel_num=1,
        kr_dims=64,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    neck=dict(in_channels=[96, 192, 384, 768]))

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='AdamW',
        lr=0.0001,
        betas=(0.9, 0.999),
        weight_decay=0.05))
