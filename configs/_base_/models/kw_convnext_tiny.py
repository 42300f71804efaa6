# KernelWarehouse ConvNeXt-Tiny as its authors build it (OSVAI/KernelWarehouse
# models/kw_convnext.py): every conv dynamic, the stem included, the
# pointwise layers as 1x1 convs (linear_pw_conv=False, as the authors
# reserve them); per stage one warehouse for the depthwise convs and one for
# the pointwise convs (sharing_range ('layer', 'pwconv')), the stem and each
# downsample conv alone, no hand-over between stages; LayerNorm in the
# attention (the authors' norm_layer for ConvNeXt); KR off.
_base_ = 'mmpretrain::_base_/models/convnext/convnext-tiny.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone=dict(
            type='ConvNeXt',
            arch='tiny',
            drop_path_rate=0.3,
            linear_pw_conv=False),
        method='kernelwarehouse',
        with_kr=False,
        attention_norm='ln',
        static_layers=[],
        method_cfg=dict(
            sharing_range=('layer', 'pwconv'),
            handover=None)))
