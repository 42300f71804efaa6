# mmpretrain's ResNet-50 classifier with its backbone wrapped by KRBackbone:
# the base of every dynamic ResNet-50, whose method, KR options and static
# layers the configs inheriting it set.
_base_ = 'mmpretrain::_base_/models/resnet50.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone=dict(
            type='ResNet',
            depth=50,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch')))
