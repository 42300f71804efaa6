# ResNet-101 + ODConv (1x) as its authors build it (OSVAI/ODConv
# models/od_resnet.py, od_resnet101(kernel_num=1)). Its authors' ImageNet
# weights convert with tools/model_converters/odconv_to_mmkr.py
# (docs/converters.md); the training recipe is ResNet-18's.
_base_ = ['./resnet50_odconv1.py']

model = dict(backbone=dict(backbone=dict(depth=101)))
