# DyConv ResNet-18 (Chen et al., CVPR 2020): every conv after the stem
# dynamic, the downsample 1x1 convs included (the ODConv paper's DyConv
# ResNet-18 has 45.47M parameters, which only that choice gives), K = 4
# kernels mixed by softmax(FC(ReLU(FC(GAP(x)))) / T), squeeze ratio 4; the
# classifier static.
_base_ = './dynamic_resnet18.py'

model = dict(backbone=dict(method='dyconv', kernel_num=4, with_kr=False))
