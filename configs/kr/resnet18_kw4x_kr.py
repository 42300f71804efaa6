# ResNet-18 + KR on KernelWarehouse (4x) (beyond the poster):
# ./resnet18_kw1x_kr.py with four times the cells
# (../kernelwarehouse/resnet18_kw4x.py).
_base_ = './resnet18_kw1x_kr.py'

model = dict(backbone=dict(method_cfg=dict(cell_num_ratio=4)))
