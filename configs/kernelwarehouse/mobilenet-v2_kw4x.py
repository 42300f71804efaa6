# MobileNetV2 1.0x + KernelWarehouse (4x) on ImageNet-1k, the authors'
# recipe (configs/mobilenetv2_100/kw4x_mobilenetv2_100.json): four times the
# cells, the expansion and projection 1x1 convs of a stage in separate
# warehouses.
_base_ = './mobilenet-v2_kw1x.py'

model = dict(
    backbone=dict(
        method_cfg=dict(cell_num_ratio=4, sharing_range=('layer', ))))
