# ViT-Nano (see ../_base_/models/vit_nano.py) on ImageNet-1k, mmpretrain's
# DeiT-Tiny config written for 8 GPUs x 128 images.
_base_ = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'

custom_imports = dict(imports=['mmkr'], allow_failed_imports=False)
# mmkr's preemption-safe runtime, as ../_base_/default_runtime.py sets it
# (a second runtime base would repeat the keys of mmpretrain's)
runner_type = 'ResumableRunner'
default_hooks = dict(checkpoint=dict(type='PreemptibleCheckpointHook'))

model = dict(
    backbone=dict(
        arch=dict(
            _delete_=True,
            embed_dims=128,
            num_layers=12,
            num_heads=2,
            feedforward_channels=512)),
    head=dict(in_channels=128))
train_dataloader = dict(batch_size=128)
