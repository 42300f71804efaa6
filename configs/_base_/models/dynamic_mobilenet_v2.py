# mmpretrain's MobileNetV2 1.0x classifier with its backbone wrapped by
# KRBackbone: the base of every dynamic MobileNetV2 1.0x, whose method, KR
# options and static layers the configs inheriting it set.
_base_ = 'mmpretrain::_base_/models/mobilenet_v2_1x.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone=dict(type='MobileNetV2', widen_factor=1.0)))
