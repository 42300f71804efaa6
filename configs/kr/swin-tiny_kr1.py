# Swin-Tiny + KR (1x) on ImageNet-1k: mmpretrain's Swin-T recipe
# (swin-tiny_16xb64_in1k.py: AdamW, lr 1e-3 for batch 1024, gradients
# clipped at 5) with the attention temperature annealed from 30 to 1 over
# the first 10 epochs.
_base_ = [
    '../_base_/models/kr_swin_tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime.py',
]

optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
custom_hooks = [
    dict(
        type='KRTemperatureHook',
        init_temperature=30.,
        final_temperature=1.,
        anneal_epochs=10)
]
