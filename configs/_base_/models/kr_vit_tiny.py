# KR ViT-Tiny: mmpretrain's DeiT-Tiny (192 dims, 12 layers, 3 heads) whose
# qkv, projection and both FFN linears are KR layers on tokens; the patch
# embedding stays static. The head reads [class token, d_L]. DeiT's
# initialisation, label smoothing and Mixup/CutMix as in
# mmpretrain::deit/deit-tiny_4xb256_in1k.py. 1x: kernel_num=1.
kr_dims = 64
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='KRBackbone',
        backbone=dict(
            type='VisionTransformer',
            arch='deit-tiny',
            img_size=224,
            patch_size=16),
        kernel_num=1,
        kr_dims=kr_dims,
        return_kr=True),
    neck=None,
    head=dict(
        type='KRLinearClsHead',
        num_classes=1000,
        in_channels=192,
        kr_dims=kr_dims,
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
    init_cfg=[
        dict(type='TruncNormal', layer='Linear', std=.02),
        dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
    ],
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0)
    ]))
