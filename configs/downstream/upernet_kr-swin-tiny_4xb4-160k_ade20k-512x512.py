# UPerNet with a KR Swin-Tiny (1x) backbone on ADE20K (MMSegmentation 1.x,
# 4 GPUs x 4 images, 160k iterations, 512x512 crops). Backbone options, heads,
# optimizer and schedule are those of MMSegmentation's
# swin-tiny-patch4-window7-in1k-pre_upernet_8xb2-160k_ade20k-512x512.py, with
# mmpretrain's Swin-T (the KR wrapper builds mmpretrain backbones) and its
# small maps padded to the window. The backbone checkpoint is a KR Swin-Tiny
# classifier's (configs/kr/swin-tiny_kr1.py), loaded with prefix='backbone.'.
_base_ = [
    'mmseg::_base_/models/upernet_swin.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
custom_imports = dict(
    imports=['mmkr', 'mmpretrain.models'], allow_failed_imports=False)

pretrained = 'checkpoints/swin-tiny_kr1_in1k.pth'
crop_size = (512, 512)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='mmpretrain.KRBackbone',
        backbone=dict(
            type='mmpretrain.SwinTransformer',
            arch='tiny',
            img_size=224,
            drop_path_rate=0.3,
            out_indices=(0, 1, 2, 3),
            pad_small_map=True),
        kernel_num=1,
        kr_dims=64,
        init_cfg=dict(
            type='Pretrained', checkpoint=pretrained, prefix='backbone.')),
    decode_head=dict(in_channels=[96, 192, 384, 768], num_classes=150),
    auxiliary_head=dict(in_channels=384, num_classes=150))

# AdamW, no weight decay for the relative position tables and norms
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=0.00006, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=1500,
        end=160000,
        by_epoch=False,
    )
]
train_dataloader = dict(batch_size=4)
