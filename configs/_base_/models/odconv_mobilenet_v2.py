# ODConv MobileNetV2 1.0x as its authors build it (OSVAI/ODConv
# models/od_mobilenetv2.py, od_mobilenetv2_100): every conv after the stem
# dynamic (depthwise and the last 1x1 conv included), BatchNorm in the
# attention trunk, dropout 0.2 before the classifier (OD_MobileNetV2's
# default). 1x: kernel_num=1.
_base_ = './dynamic_mobilenet_v2.py'

model = dict(
    backbone=dict(
        method='odconv', kernel_num=1, with_kr=False, attention_norm='bn'),
    head=dict(type='DropoutLinearClsHead', dropout=0.2))
