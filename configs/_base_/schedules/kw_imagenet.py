# KernelWarehouse's recipe for ResNet and ConvNeXt (OSVAI/KernelWarehouse
# main.py, the ConvNeXt recipe): AdamW, lr 4e-3 for batch 4096, weight decay
# 0.05 on the weights only (not on norms, biases or other 1-D parameters),
# 20 warm-up epochs, then cosine to 1e-6 at 300 epochs, no gradient clipping;
# τ annealed from 1 to 0 over the first 20 epochs, per iteration (engine.py).
_base_ = 'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py'

optim_wrapper = dict(
    optimizer=dict(lr=4e-3),
    paramwise_cfg=dict(_delete_=True, flat_decay_mult=0.0),
    clip_grad=None)

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        end=20,
        convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=20)
]

# 32 GPUs x 128 images (the authors: 8 GPUs x 128 x 4 accumulated steps,
# optim_wrapper.accumulative_counts=4)
auto_scale_lr = dict(base_batch_size=4096)

custom_hooks = [
    dict(
        type='KRTemperatureHook',
        init_temperature=1.,
        final_temperature=0.,
        anneal_epochs=20)
]
