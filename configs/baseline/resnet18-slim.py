# ResNet-18 slim (see ../_base_/models/resnet18_slim.py) on ImageNet-1k,
# 8 GPUs x 32 images, mmpretrain's ResNet-18 recipe.
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'

custom_imports = dict(imports=['mmkr'], allow_failed_imports=False)
# mmkr's preemption-safe runtime, as ../_base_/default_runtime.py sets it
# (a second runtime base would repeat the keys of mmpretrain's)
runner_type = 'ResumableRunner'
default_hooks = dict(checkpoint=dict(type='PreemptibleCheckpointHook'))

# The poster's static ResNet-18 slim row is ODConv's models/resnet.py: every
# BatchNorm gamma = 1, not mmpretrain's zero_init_residual=True, which zeroes
# the last gamma of every block.
model = dict(
    backbone=dict(
        base_channels=55, stem_channels=55, zero_init_residual=False),
    head=dict(in_channels=440))
