# ODConv MobileNetV2 0.5x: the same dynamic layers without the KR path, with
# ODConv's BatchNorm in the attention branch. 1x: kernel_num=1.
_base_ = 'mmpretrain::_base_/models/mobilenet_v2_1x.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone=dict(type='MobileNetV2', widen_factor=0.5),
        kernel_num=1,
        with_kr=False,
        attention_norm='bn'))
