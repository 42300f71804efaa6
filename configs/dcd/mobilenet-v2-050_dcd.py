# MobileNetV2 0.5x + DCD on ImageNet-1k, 8 GPUs x 32 images, as DCD's authors
# build it (liyunsheng13/dcd models/imagenet/mobilenetv2_dcd.py,
# mobilenetv2_dcd(width_mult=0.5)): the two 1x1 convs of every block with an
# expansion are DYModule (fc_squeeze 8), the stem, the first block (expansion
# 1), the depthwise convs and the last 1x1 conv static, DCD's dynamic
# classifier behind dropout 0.1. Recipe: ODConv's MobileNetV2 training (SGD
# lr 0.05, cosine, 150 epochs), with which ODConv re-ran DCD; DCD has no
# temperature.
_base_ = [
    '../_base_/models/dynamic_mobilenet_v2_050.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../_base_/schedules/odconv_mobilenet_v2_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        method='dcd',
        method_cfg=dict(layout='mobilenetv2', fc_squeeze=8),
        with_kr=False,
        static_layers=[
            'conv1.conv', 'layer1.*', 'layer*.conv.1', 'conv2.conv'
        ]),
    # DCD's MobileNetV2 draws every nn.Linear N(0, 0.01), its dynamic
    # classifier's too (mobilenetv2_dcd.py, _initialize_weights).
    head=dict(
        type='DCDClsHead',
        dropout=0.1,
        init_cfg=dict(type='Normal', layer='Linear', std=0.01)))
custom_hooks = []
