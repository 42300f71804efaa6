# KernelWarehouse-ResNet-18 (4x) on the digits: ./resnet18_kw1x_digits.py with
# four times the cells.
_base_ = './resnet18_kw1x_digits.py'

model = dict(backbone=dict(method_cfg=dict(cell_num_ratio=4)))
