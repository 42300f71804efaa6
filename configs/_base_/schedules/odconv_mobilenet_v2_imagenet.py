# ODConv's MobileNetV2 recipe: SGD (momentum 0.9, weight decay 4e-5), lr 0.05
# for batch 256 (8 GPUs x 32), cosine decay over 150 epochs, and the
# attention temperature annealed from 30 to 1 over the first 10 epochs.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=4e-5))

param_scheduler = dict(
    type='CosineAnnealingLR', T_max=150, by_epoch=True, begin=0, end=150)

train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=256)

custom_hooks = [
    dict(
        type='KRTemperatureHook',
        init_temperature=30.,
        final_temperature=1.,
        anneal_epochs=10)
]
