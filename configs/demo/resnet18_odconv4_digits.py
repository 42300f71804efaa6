# ODConv-ResNet-18 (4x) on the digits, as ODConv's authors build it
# (../_base_/models/odconv_resnet18.py: KR off, BatchNorm in the attention
# trunk, the downsample convs static, dropout 0.2 before the classifier as
# their README trains 4x), at the demo's quarter width and recipe. The demo
# job's comparison model for vis_tsne.py's KR vs ODConv scores.
_base_ = [
    '../_base_/models/odconv_resnet18.py',
    '../_base_/digits_demo.py',
]

model = dict(
    backbone=dict(
        backbone=dict(stem_channels=16, base_channels=16),
        kernel_num=4,
        probe_size=(32, 32)),
    head=dict(num_classes=10, in_channels=128, topk=(1, ), dropout=0.2))

# as the KR demo: T 30 -> 1 over the first epoch, attention statistics
custom_hooks = [
    dict(type='KRTemperatureHook', anneal_epochs=1),
    dict(type='AttentionStatsHook', interval=5),
]
