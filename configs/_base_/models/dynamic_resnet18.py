# mmpretrain's ResNet-18 classifier with its backbone wrapped by KRBackbone:
# the base of every dynamic ResNet-18, whose method, KR options and static
# layers the configs inheriting it set.
_base_ = 'mmpretrain::_base_/models/resnet18.py'

# Every BatchNorm starts at gamma = 1, as in the code the comparison rows come
# from: ODConv's od_resnet.py, DCD's resnet_dcd.py, KernelWarehouse's
# kw_resnet.py (and timm's EfficientNet-CondConv and WeightNet's ShuffleNetV2
# for their layers). mmpretrain's zero_init_residual=True would zero the last
# gamma of every block instead; KR is compared with them from the same start.
model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone=dict(
            type='ResNet',
            depth=18,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch',
            zero_init_residual=False)))
