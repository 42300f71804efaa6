# ResNet-50 + DCD as its authors build it (liyunsheng13/dcd
# models/imagenet/resnet_dcd.py, resnet50_dcd): every conv of the
# bottlenecks is conv_dy (h = GAP, latent width floor(sqrt(C_in))), the stem
# and the shortcuts static, DYCls as the classifier. Its authors' ImageNet
# weights convert with tools/model_converters/dcd_to_mmkr.py
# (docs/converters.md); the training recipe is ResNet-18's.
_base_ = ['./resnet18_dcd.py']

model = dict(
    backbone=dict(
        backbone=dict(depth=50), method_cfg=dict(layout='resnet_bottleneck')),
    head=dict(in_channels=2048))
