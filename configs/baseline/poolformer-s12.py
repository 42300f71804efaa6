# PoolFormer-S12 on ImageNet-1k: mmpretrain's own config (32 GPUs x 128,
# lr 4e-3) written for 8 GPUs x 128 images (lr 1e-3).
_base_ = 'mmpretrain::poolformer/poolformer-s12_32xb128_in1k.py'

custom_imports = dict(imports=['mmkr'], allow_failed_imports=False)
# mmkr's preemption-safe runtime, as ../_base_/default_runtime.py sets it
# (a second runtime base would repeat the keys of mmpretrain's)
runner_type = 'ResumableRunner'
default_hooks = dict(checkpoint=dict(type='PreemptibleCheckpointHook'))

optim_wrapper = dict(optimizer=dict(lr=4e-3 * 1024 / 4096))
auto_scale_lr = dict(base_batch_size=1024)
