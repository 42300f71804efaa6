# ConvNeXt-Tiny + KR (1x) on ImageNet-1k: mmpretrain's ConvNeXt-T recipe
# (convnext-tiny_32xb128_in1k.py: AdamW, lr 4e-3 for batch 4096, EMA) with
# the attention temperature annealed from 30 to 1 over the first 10 epochs.
_base_ = [
    '../_base_/models/kr_convnext_tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(kernel_num=1))

train_dataloader = dict(batch_size=128)
optim_wrapper = dict(optimizer=dict(lr=4e-3), clip_grad=None)
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
    dict(
        type='KRTemperatureHook',
        init_temperature=30.,
        final_temperature=1.,
        anneal_epochs=10),
]
auto_scale_lr = dict(base_batch_size=4096)
