# ODConv ResNet-50 as its authors build it (OSVAI/ODConv models/od_resnet.py,
# od_resnet50): the three convs of every bottleneck dynamic, the stem and the
# downsample 1x1 convs static, BatchNorm in the attention trunk, dropout
# before the classifier (OD_ResNet's default 0.1). 1x: kernel_num=1.
_base_ = './dynamic_resnet50.py'

model = dict(
    backbone=dict(
        method='odconv',
        kernel_num=1,
        with_kr=False,
        attention_norm='bn',
        static_layers=['conv1', '*.downsample.*']),
    head=dict(type='DropoutLinearClsHead', dropout=0.1))
