# ODConv-ResNet-18 (1x) on the digits: resnet18_odconv4_digits.py with one
# kernel per layer and OD_ResNet's default dropout, 0.1.
_base_ = ['./resnet18_odconv4_digits.py']

model = dict(backbone=dict(kernel_num=1), head=dict(dropout=0.1))
