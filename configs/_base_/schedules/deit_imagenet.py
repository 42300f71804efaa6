# mmpretrain's DeiT recipe (deit-tiny_4xb256_in1k.py): AdamW, lr 1e-3 for
# batch 1024 (8 GPUs x 128), weight decay 0.05 without decay on norms, biases,
# class token and position embedding, 20 warm-up epochs then cosine to 300,
# gradients clipped at 5; and the attention temperature annealed from 30 to
# 1 over the first 10 epochs.
_base_ = 'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py'

optim_wrapper = dict(
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0)
        }),
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
