# ResNet-18 + CondConv (8x) on ImageNet-1k, 8 GPUs x 32 images. CondConv
# (Yang et al., NeurIPS 2019; timm's CondConv2d): 8 experts per conv mixed by
# sigmoid(Linear(GAP(x))), no hidden layer, no temperature; both 3x3 convs of
# every block dynamic, the stem and the downsample convs static, as in
# ODConv's ResNet. Recipe: ODConv's ResNet training (SGD lr 0.1, 100 epochs,
# steps at 30/60/90), with which ODConv re-ran CondConv.
_base_ = [
    '../_base_/models/dynamic_resnet18.py',
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/odconv_resnet_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(
    backbone=dict(
        method='condconv',
        kernel_num=8,
        with_kr=False,
        static_layers=['conv1', '*.downsample.*']))
# CondConv's routing has no temperature to anneal.
custom_hooks = []
