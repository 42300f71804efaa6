# CondConv-ResNet-18 (8x) on the digits, the network of
# ../condconv/resnet18_condconv8.py: the DyConv demo's network with
# sigmoid(Linear(GAP x)) routing over 8 experts, the downsample convs static
# and no temperature to anneal.
_base_ = ['./resnet18_dyconv4_digits.py']

model = dict(
    backbone=dict(
        method='condconv',
        kernel_num=8,
        static_layers=['conv1', '*.downsample.*']))
custom_hooks = [dict(type='AttentionStatsHook', interval=5)]
