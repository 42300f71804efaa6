# KR-ResNet-18 (1x) on the digits: the demo job with one kernel per layer
# (K = 1), everything else as resnet18_kr4_digits.py.
_base_ = ['./resnet18_kr4_digits.py']

model = dict(backbone=dict(kernel_num=1))
