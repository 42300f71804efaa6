# ODConv MobileNetV2 0.5x as its authors build it (OSVAI/ODConv
# models/od_mobilenetv2.py): every conv after the stem dynamic (depthwise and
# the last 1x1 conv included), BatchNorm in the attention trunk, dropout 0.2
# before the classifier (OD_MobileNetV2's default). 1x: kernel_num=1.
_base_ = './dynamic_mobilenet_v2_050.py'

model = dict(
    backbone=dict(
        method='odconv', kernel_num=1, with_kr=False, attention_norm='bn'),
    head=dict(type='DropoutLinearClsHead', dropout=0.2))
