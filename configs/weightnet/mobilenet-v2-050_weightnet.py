# MobileNetV2 0.5x + WeightNet on ImageNet-1k, 8 GPUs x 32 images. As in
# WeightNet's ShuffleNetV2: every conv of the blocks is a WeightNet conv (the
# depthwise ones in WeightNet_DW's form: M/G gates per channel), the stem and
# the last 1x1 conv static, M = 2, G = 2, x_gap = FC(GAP(X)) to
# max(16, C_in / 16) per conv. Recipe: ODConv's MobileNetV2 training (SGD lr
# 0.05, cosine, 150 epochs); WeightNet has no temperature.
_base_ = [
    '../_base_/models/dynamic_mobilenet_v2_050.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../_base_/schedules/odconv_mobilenet_v2_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        method='weightnet',
        with_kr=False,
        static_layers=['conv1.conv', 'conv2.conv']))
custom_hooks = []
