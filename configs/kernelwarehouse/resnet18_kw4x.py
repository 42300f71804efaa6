# ResNet-18 + KernelWarehouse (4x) on ImageNet-1k, the authors' recipe
# (configs/resnet18/kw4x_resnet18.json): as 1x with four times the cells.
_base_ = './resnet18_kw1x.py'

model = dict(backbone=dict(method_cfg=dict(cell_num_ratio=4)))
