# ResNet-18 + KernelWarehouse (1/4x) on ImageNet-1k, the authors' recipe
# (configs/resnet18/kw1d4x_resnet18.json): cells of half the channels each
# way, a quarter as many cells as the kernels have, no drop-path, no Mixup
# or CutMix.
_base_ = './resnet18_kw1x.py'

model = dict(
    backbone=dict(
        backbone=dict(drop_path_rate=0.),
        method_cfg=dict(
            cell_num_ratio=0.25, cell_inplane_ratio=0.5,
            cell_outplane_ratio=0.5)),
    train_cfg=None)
