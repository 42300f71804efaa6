# MobileNetV2 0.5x + CondConv (8x) on ImageNet-1k, 8 GPUs x 32 images:
# every conv after the stem dynamic, 8 experts mixed by
# sigmoid(Linear(GAP(x))), no hidden layer, no temperature. Recipe: ODConv's
# MobileNetV2 training (SGD lr 0.05, cosine, 150 epochs), with which ODConv
# re-ran CondConv.
_base_ = [
    '../_base_/models/dynamic_mobilenet_v2_050.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../_base_/schedules/odconv_mobilenet_v2_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(method='condconv', kernel_num=8, with_kr=False))
# CondConv's routing has no temperature to anneal.
custom_hooks = []
