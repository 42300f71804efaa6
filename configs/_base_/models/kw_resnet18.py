# KernelWarehouse ResNet-18 as its authors build it (OSVAI/KernelWarehouse
# models/kw_resnet.py): every conv after the stem dynamic, the downsample 1x1
# convs included; one warehouse per stage (sharing_range ('layer', 'conv')),
# the first conv of a stage and its downsample conv taking the previous
# stage's (handover='block_input'); BatchNorm in the attention; KR off.
# 1x: cell_num_ratio=1.
_base_ = './dynamic_resnet18.py'

model = dict(
    backbone=dict(
        method='kernelwarehouse',
        with_kr=False,
        attention_norm='bn',
        method_cfg=dict(
            cell_num_ratio=1,
            cell_inplane_ratio=1,
            cell_outplane_ratio=1,
            sharing_range=('layer', 'conv'),
            handover='block_input')))
