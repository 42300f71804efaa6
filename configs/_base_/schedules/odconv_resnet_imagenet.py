# ODConv's ResNet recipe: SGD, lr 0.1 for batch 256, 100 epochs, steps at
# 30/60/90 (mmpretrain's imagenet_bs256), and the attention temperature
# annealed from 30 to 1 over the first 10 epochs.
_base_ = 'mmpretrain::_base_/schedules/imagenet_bs256.py'

custom_hooks = [
    dict(
        type='KRTemperatureHook',
        init_temperature=30.,
        final_temperature=1.,
        anneal_epochs=10)
]
