# PoolFormer-S12 + KR (1x) on ImageNet-1k, 8 GPUs x 128 images.
_base_ = [
    '../_base_/models/kr_poolformer_s12.py',
    'mmpretrain::_base_/datasets/imagenet_bs128_poolformer_small_224.py',
    '../_base_/schedules/poolformer_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(kernel_num=1))
