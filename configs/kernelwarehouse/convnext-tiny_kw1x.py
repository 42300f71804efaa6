# ConvNeXt-Tiny + KernelWarehouse (1x) on ImageNet-1k, the authors' recipe
# (configs/convnext/kw1x_convnext_tiny.json on main.py's ConvNeXt recipe):
# 300 epochs of AdamW at batch 4096, drop-path 0.3, EMA of the weights
# (decay 0.9999) evaluated.
_base_ = [
    '../_base_/models/kw_convnext_tiny.py',
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    '../_base_/schedules/kw_imagenet.py',
    '../_base_/default_runtime.py',
]

train_dataloader = dict(batch_size=128)

custom_hooks = [
    dict(
        type='KRTemperatureHook',
        init_temperature=1.,
        final_temperature=0.,
        anneal_epochs=20),
    dict(type='EMAHook', momentum=1e-4, priority='ABOVE_NORMAL'),
]
