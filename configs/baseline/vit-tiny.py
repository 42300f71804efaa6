# ViT-Tiny (DeiT-Tiny) on ImageNet-1k: mmpretrain's own config (4 GPUs x 256)
# written for 8 GPUs x 128 images.
_base_ = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'

custom_imports = dict(imports=['mmkr'], allow_failed_imports=False)
# mmkr's preemption-safe runtime, as ../_base_/default_runtime.py sets it
# (a second runtime base would repeat the keys of mmpretrain's)
runner_type = 'ResumableRunner'
default_hooks = dict(checkpoint=dict(type='PreemptibleCheckpointHook'))

train_dataloader = dict(batch_size=128)
