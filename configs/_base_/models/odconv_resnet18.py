# ODConv ResNet-18 as its authors build it (OSVAI/ODConv models/od_resnet.py):
# both 3x3 convs of every block dynamic, the stem and the downsample 1x1 convs
# static, BatchNorm in the attention trunk, dropout before the classifier
# (OD_ResNet's default 0.1; the 4x configs set the README's 0.2).
# 1x: kernel_num=1.
_base_ = './dynamic_resnet18.py'

model = dict(
    backbone=dict(
        method='odconv',
        kernel_num=1,
        with_kr=False,
        attention_norm='bn',
        static_layers=['conv1', '*.downsample.*']),
    head=dict(type='DropoutLinearClsHead', dropout=0.1))
