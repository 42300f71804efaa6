# ConvNeXt-Tiny + KR (4x) on ImageNet-1k: the 1x config with 4 candidate
# kernels per layer.
_base_ = './convnext-tiny_kr1.py'

model = dict(backbone=dict(kernel_num=4))
