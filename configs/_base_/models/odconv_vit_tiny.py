# ODConv ViT-Tiny: DeiT-Tiny with dynamic qkv, projection and FFN linears
# (ODConv's channel, filter and kernel attentions on tokens) and
# mmpretrain's ViT head. 1x: kernel_num=1.
_base_ = './kr_vit_tiny.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone=dict(
            type='VisionTransformer',
            arch='deit-tiny',
            img_size=224,
            patch_size=16),
        kernel_num=1,
        with_kr=False,
        attention_norm='bn'),
    head=dict(_delete_=True, type='VisionTransformerClsHead',
              num_classes=1000, in_channels=192,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                        mode='original')))
