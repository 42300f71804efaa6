# MobileNetV2 0.5x + DyConv (4x) on ImageNet-1k, 8 GPUs x 32 images: every
# conv after the stem dynamic, K = 4 kernels mixed by softmax(FC(ReLU(FC(
# GAP(x)))) / T), squeeze ratio 4. Recipe: ODConv's MobileNetV2 training
# (SGD lr 0.05, cosine, 150 epochs), with which ODConv re-ran DyConv, and the
# paper's temperature, 30 -> 1 over the first 10 epochs.
_base_ = [
    '../_base_/models/dynamic_mobilenet_v2_050.py',
    'mmpretrain::_base_/datasets/imagenet_bs32_pil_resize.py',
    '../_base_/schedules/odconv_mobilenet_v2_imagenet.py',
    '../_base_/default_runtime.py',
]

model = dict(backbone=dict(method='dyconv', kernel_num=4, with_kr=False))
