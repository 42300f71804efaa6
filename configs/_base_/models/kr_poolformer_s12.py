# KR PoolFormer-S12: mmpretrain's PoolFormer s12 whose channel-MLP 1x1 convs
# and downsampling embeddings are KR layers; the first patch embedding stays
# static. The head reads [GAP(feature), d_L]. 1x: kernel_num=1.
_base_ = 'mmpretrain::_base_/models/poolformer/poolformer_s12.py'

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
