# ResNet-50 + KernelWarehouse (1x) on ImageNet-1k, the authors' recipe
# (configs/resnet50/kw1x_resnet50.json; see ./resnet18_kw1x.py): the
# ResNet-18 rules, with the first block's 1x1 conv and its stride-1
# downsample conv static, as kw_resnet.py builds them (stage -1,
# enabled=False).
_base_ = './resnet18_kw1x.py'

model = dict(
    backbone=dict(
        backbone=dict(depth=50),
        static_layers=['conv1', 'layer1.0.conv1', 'layer1.0.downsample.0']),
    head=dict(in_channels=2048))
