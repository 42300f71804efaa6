# KR ResNet-50: mmpretrain's ResNet-50 classifier with KR layers everywhere but
# the stem, and a head over [GAP(feature), d_L]. 1x: kernel_num=1.
_base_ = './dynamic_resnet50.py'

kr_dims = 64
model = dict(
    backbone=dict(kernel_num=1, kr_dims=kr_dims, return_kr=True),
    neck=None,
    head=dict(type='KRLinearClsHead', kr_dims=kr_dims))
