# KernelWarehouse-ResNet-18 (1x) on the digits, as its authors build it
# (../_base_/models/kw_resnet18.py: KR off, one warehouse per stage, BatchNorm
# in the attention, every conv after the stem dynamic), at the demo's quarter
# width and recipe.
_base_ = [
    '../_base_/models/kw_resnet18.py',
    '../_base_/digits_demo.py',
]

model = dict(
    backbone=dict(
        backbone=dict(stem_channels=16, base_channels=16),
        probe_size=(32, 32)),
    head=dict(num_classes=10, in_channels=128, topk=(1, )))

# τ 1 -> 0 over the first epoch, as the other demos anneal their temperature
custom_hooks = [dict(type='KRTemperatureHook', anneal_epochs=1)]
