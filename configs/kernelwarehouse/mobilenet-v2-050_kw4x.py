# MobileNetV2 0.5x + KernelWarehouse (4x) on ImageNet-1k, the authors'
# recipe (configs/mobilenetv2_050/kw4x_mobilenetv2_050.json): four times the
# cells, the expansion and projection 1x1 convs of a stage in separate
# warehouses, label smoothing 0.1 (main.py's default, which this JSON keeps).
_base_ = './mobilenet-v2-050_kw1x.py'

model = dict(
    backbone=dict(
        method_cfg=dict(cell_num_ratio=4, sharing_range=('layer', ))),
    head=dict(
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
