# MobileNetV2 1.0x + KernelWarehouse (1x) on ImageNet-1k, the authors'
# recipe (configs/mobilenetv2_100/kw1x_mobilenetv2_100.json): as 0.5x, with
# label smoothing 0.1 (main.py's default, which this JSON keeps).
_base_ = './mobilenet-v2-050_kw1x.py'

model = dict(
    backbone=dict(backbone=dict(widen_factor=1.0)),
    head=dict(
        loss=dict(
            type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
