# KernelWarehouse's MobileNetV2 recipe (OSVAI/KernelWarehouse
# configs/mobilenetv2_*/*.json): ODConv's MobileNetV2 recipe (SGD, lr 0.05 for
# batch 256, weight decay 4e-5, cosine over 150 epochs, no warm-up) with the
# weight decay on the weights only (not on norms, biases or other 1-D
# parameters), the cosine per iteration down to 1e-6, and τ annealed from 1
# to 0 over the first 15 epochs, per iteration.
_base_ = './odconv_mobilenet_v2_imagenet.py'

optim_wrapper = dict(paramwise_cfg=dict(flat_decay_mult=0.0))

param_scheduler = dict(eta_min=1e-6, convert_to_iter_based=True)

custom_hooks = [
    dict(
        type='KRTemperatureHook',
        init_temperature=1.,
        final_temperature=0.,
        anneal_epochs=15)
]
