# ViT-Nano: a DeiT-style VisionTransformer of 12 layers, 128 dims, 2 heads
# and MLP ratio 4 (0.61G multiply-adds at 224x224 with the attention
# products counted), built and trained as mmpretrain's DeiT-Tiny.
vit_nano_arch = dict(
    embed_dims=128, num_layers=12, num_heads=2, feedforward_channels=512)
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=vit_nano_arch,
        img_size=224,
        patch_size=16),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=1000,
        in_channels=128,
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
