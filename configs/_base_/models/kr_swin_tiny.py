# KR Swin-Tiny: mmpretrain's Swin-T whose window-attention and MLP linears
# and patch-merging reductions are KR layers, each window served by the
# kernel of its own image; the patch embedding and the relative-position
# tables stay static. The head pools the last feature map and reads it with
# d_L (no neck). 1x: kernel_num=1.
_base_ = 'mmpretrain::_base_/models/swin_transformer/tiny_224.py'

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
