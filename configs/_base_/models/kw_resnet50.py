# KernelWarehouse ResNet-50 as its authors build it (OSVAI/KernelWarehouse
# models/kw_resnet.py): the ResNet-18 rules (./kw_resnet18.py); the first
# block's 1x1 conv and its stride-1 downsample conv stay static, as
# kw_resnet.py builds them (stage -1, enabled=False). 1x: cell_num_ratio=1.
_base_ = 'mmpretrain::_base_/models/resnet50.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='KRBackbone',
        backbone=dict(
            type='ResNet',
            depth=50,
            num_stages=4,
            out_indices=(3, ),
            style='pytorch'),
        method='kernelwarehouse',
        with_kr=False,
        attention_norm='bn',
        static_layers=['conv1', 'layer1.0.conv1', 'layer1.0.downsample.0'],
        method_cfg=dict(
            cell_num_ratio=1,
            cell_inplane_ratio=1,
            cell_outplane_ratio=1,
            sharing_range=('layer', 'conv'),
            handover='block_input')))
