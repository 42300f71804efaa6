# KR ConvNeXt-Tiny: mmpretrain's ConvNeXt tiny whose depthwise 7x7 convs,
# channels-last MLP linears and downsampling convs are KR layers; the stem
# stays static. The head reads [pooled feature, d_L]. 1x: kernel_num=1.
_base_ = 'mmpretrain::_base_/models/convnext/convnext-tiny.py'

kr_dims = 64
model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone={{_base_.model.backbone}},
        kernel_num=1,
        kr_dims=kr_dims,
        return_kr=True),
    neck=None,
    head=dict(type='KRLinearClsHead', kr_dims=kr_dims))
