# The demo job: KR-ResNet-18 (4x) at a quarter of the width (stages of 16,
# 32, 64, 128 channels) on scikit-learn's handwritten digits, a few minutes
# on CPU; the data, schedule and runtime are the demo recipe
# (../_base_/digits_demo.py) that every config here shares.
_base_ = [
    '../_base_/models/kr_resnet18.py',
    '../_base_/digits_demo.py',
]

model = dict(
    backbone=dict(
        backbone=dict(stem_channels=16, base_channels=16),
        kernel_num=4,
        probe_size=(32, 32)),
    head=dict(num_classes=10, in_channels=128, topk=(1, )))

# The attention temperature anneals 30 -> 1 over the first epoch. Every 5
# iterations, the kernel-attention entropy, the mean attentions, ||d|| and T
# of each stage go to the visualizer's backends.
custom_hooks = [
    dict(type='KRTemperatureHook', anneal_epochs=1),
    dict(type='AttentionStatsHook', interval=5),
]
