# The few-shot digits protocol (digits_fewshot.py) with the BatchNorm
# statistics of the final network recomputed before the validation:
# mmpretrain's PreciseBNHook after the last epoch, over one pass of the
# training set (537 images: the 179 shown 3 times). Over 102 steps at
# lr 0.05 the running statistics (momentum 0.1) trail weights that keep
# changing, and a dynamic network's more (its kernels move with the
# attentions and the temperature): the validation then scores stale
# statistics rather than the network. configs/demo/README.md gives both
# tables.
_base_ = './digits_fewshot.py'
default_hooks = dict(
    precise_bn=dict(type='PreciseBNHook', num_samples=537, interval=6))
