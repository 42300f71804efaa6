# KR MobileNetV2 1.0x: every conv but the stem is a KR layer, depthwise convs
# included; the head reads [GAP(feature), d_L]. 1x: kernel_num=1.
_base_ = './dynamic_mobilenet_v2.py'

kr_dims = 64
model = dict(
    backbone=dict(kernel_num=1, kr_dims=kr_dims, return_kr=True),
    neck=None,
    head=dict(type='KRLinearClsHead', kr_dims=kr_dims))
