# mmpretrain's PoolFormer recipe (poolformer-s12_32xb128_in1k.py: lr 4e-3 for
# batch 4096) written for 8 GPUs x 128: AdamW, lr 1e-3 for batch 1024,
# weight decay 0.05, 20 warm-up epochs then cosine to 300, gradients clipped
# at 5; and the attention temperature annealed from 30 to 1 over the first
# 10 epochs.
_base_ = 'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py'

optim_wrapper = dict(
    optimizer=dict(lr=4e-3 * 1024 / 4096),
    clip_grad=dict(max_norm=5.0),
)

auto_scale_lr = dict(base_batch_size=1024)

custom_hooks = [
    dict(
        type='KRTemperatureHook',
        init_temperature=30.,
        final_temperature=1.,
        anneal_epochs=10)
]
