# ResNet-50 + KernelWarehouse (1/2x) on ImageNet-1k, the authors' recipe
# (configs/resnet50/kw1d2x_resnet50.json): cells of half the channels each
# way, half as many cells as the kernels have, and each layer's attention
# reaching the other layers' cells through a basis of 1/16 of them
# (nonlocal_basis_ratio).
_base_ = './resnet50_kw1x.py'

model = dict(
    backbone=dict(
        method_cfg=dict(
            cell_num_ratio=0.5,
            cell_inplane_ratio=0.5,
            cell_outplane_ratio=0.5,
            nonlocal_basis_ratio=0.0625)))
