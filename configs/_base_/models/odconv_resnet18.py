# ODConv ResNet-18: the same dynamic layers without the KR path, with ODConv's
# BatchNorm in the attention branch. 1x: kernel_num=1.
_base_ = 'mmpretrain::_base_/models/resnet18.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone=dict(
            type='ResNet',
            depth=18,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch'),
        kernel_num=1,
        with_kr=False,
        attention_norm='bn'))
