# DyConv-ResNet-18 (4x) on the digits (../_base_/models/dyconv_resnet18.py:
# every conv after the stem dynamic, softmax(FC(ReLU(FC(GAP x))) / T) over 4
# kernels), at the demo's quarter width and recipe.
_base_ = [
    '../_base_/models/dyconv_resnet18.py',
    '../_base_/digits_demo.py',
]

model = dict(
    backbone=dict(
        backbone=dict(stem_channels=16, base_channels=16),
        probe_size=(32, 32)),
    head=dict(num_classes=10, in_channels=128, topk=(1, )))

# DyConv's temperature, 30 -> 1, over the demo's first epoch
custom_hooks = [
    dict(type='KRTemperatureHook', anneal_epochs=1),
    dict(type='AttentionStatsHook', interval=5),
]
