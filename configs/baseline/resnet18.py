# ResNet-18 on ImageNet-1k, 8 GPUs x 32 images: mmpretrain's own config (its
# imagenet_bs256 schedule is ODConv's ResNet recipe).
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'

custom_imports = dict(imports=['mmkr'], allow_failed_imports=False)
# mmkr's preemption-safe runtime, as ../_base_/default_runtime.py sets it
# (a second runtime base would repeat the keys of mmpretrain's)
runner_type = 'ResumableRunner'
default_hooks = dict(checkpoint=dict(type='PreemptibleCheckpointHook'))

# The poster's static ResNet-18 row is ODConv's models/resnet.py: every
# BatchNorm gamma = 1, not mmpretrain's zero_init_residual=True, which zeroes
# the last gamma of every block.
model = dict(backbone=dict(zero_init_residual=False))
