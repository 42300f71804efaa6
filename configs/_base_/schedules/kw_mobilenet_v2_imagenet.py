# KernelWarehouse's MobileNetV2 recipe (OSVAI/KernelWarehouse
# configs/mobilenetv2_*/*.json): SGD (momentum 0.9), lr 0.05 for batch 256
# (8 GPUs x 32), weight decay 4e-5 on the weights only (not on norms, biases
# or other 1-D parameters), cosine to 1e-6 over 150 epochs without warm-up;
# τ annealed from 1 to 0 over the first 15 epochs, per iteration.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(flat_decay_mult=0.0))

param_scheduler = dict(
    type='CosineAnnealingLR',
    T_max=150,
    eta_min=1e-6,
    by_epoch=True,
    begin=0,
    end=150,
    convert_to_iter_based=True)

train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=1)
val_cfg = dict()
test_cfg = dict()

auto_scale_lr = dict(base_batch_size=256)

custom_hooks = [
    dict(
        type='KRTemperatureHook',
        init_temperature=1.,
        final_temperature=0.,
        anneal_epochs=15)
]
