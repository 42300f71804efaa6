# The static baseline on the digits: mmpretrain's ResNet-18 at the demo's
# quarter width (stages of 16, 32, 64, 128 channels) with its linear head,
# trained with the demo recipe.
_base_ = [
    'mmpretrain::_base_/models/resnet18.py',
    '../_base_/digits_demo.py',
]

# Every BatchNorm gamma = 1, as ODConv's models/resnet.py and every dynamic
# demo (../_base_/models/dynamic_resnet18.py).
model = dict(
    backbone=dict(
        stem_channels=16, base_channels=16, zero_init_residual=False),
    head=dict(num_classes=10, in_channels=128, topk=(1, )))
