# ResNet-18 slim: mmpretrain's ResNet-18 with every width scaled by 55/64:
# a 55-channel stem and stages 55-110-220-440 wide (base_channels=55,
# stem_channels=55), the topology of ResNet-18 unchanged. 1.35G
# multiply-adds at 224x224, the poster's ResNet-18 slim
# (tools/analysis_tools/get_flops.py).
_base_ = 'mmpretrain::_base_/models/resnet18.py'

# Every BatchNorm gamma = 1, as ODConv's models/resnet.py (mmpretrain's
# zero_init_residual=True would zero the last gamma of every block).
model = dict(
    backbone=dict(
        base_channels=55, stem_channels=55, zero_init_residual=False),
    head=dict(in_channels=440))
