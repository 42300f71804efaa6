# ResNet-18 + KernelWarehouse (2x) on ImageNet-1k, the authors' recipe
# (configs/resnet18/kw2x_resnet18.json): as 1x with twice the cells.
_base_ = './resnet18_kw1x.py'

model = dict(backbone=dict(method_cfg=dict(cell_num_ratio=2)))
