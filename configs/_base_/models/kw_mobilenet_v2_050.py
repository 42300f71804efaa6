# KernelWarehouse MobileNetV2 0.5x as its authors build it
# (OSVAI/KernelWarehouse models/kw_mobilenetv2.py): every conv dynamic, the
# stem and the last 1x1 conv included; per stage one warehouse for the
# depthwise convs and one for the 1x1 convs (sharing_range ('layer',
# 'pwconv'); 4x: ('layer', ), separate warehouses for the expansion and the
# projection 1x1 convs), the first block of a stage taking the previous
# stage's (handover='block'); BatchNorm in the attention; KR off.
# 1x: cell_num_ratio=1.
_base_ = './dynamic_mobilenet_v2_050.py'

model = dict(
    backbone=dict(
        method='kernelwarehouse',
        with_kr=False,
        attention_norm='bn',
        static_layers=[],
        method_cfg=dict(
            sharing_range=('layer', 'pwconv'),
            handover='block')))
