# ODConv PoolFormer-S12: the same dynamic layers without the KR path, with
# ODConv's BatchNorm in the attention branch. 1x: kernel_num=1.
_base_ = 'mmpretrain::_base_/models/poolformer/poolformer_s12.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone={{_base_.model.backbone}},
        kernel_num=1,
        with_kr=False,
        attention_norm='bn'))
