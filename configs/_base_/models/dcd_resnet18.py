# DCD ResNet-18 as its authors build it (liyunsheng13/dcd
# models/imagenet/resnet_dcd.py, resnet18_dcd): both 3x3 convs of every block
# are conv_basic_dy (h pooled 2x2, latent width floor(sqrt(4 C_in))), the stem
# and the downsample convs static, and the classifier is DCD's dynamic one
# (DYCls) behind dropout 0.1 (the authors' README trains with --dropout 0.1).
_base_ = './dynamic_resnet18.py'

model = dict(
    backbone=dict(
        method='dcd',
        method_cfg=dict(layout='resnet_basic'),
        with_kr=False,
        static_layers=['conv1', '*.downsample.*']),
    head=dict(type='DCDClsHead', dropout=0.1))
