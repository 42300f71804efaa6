# WeightNet ResNet-18. WeightNet's authors (megvii-model/WeightNet) built
# ShuffleNetV2 only; the choices for ResNet-18, each from their code or, where
# it is silent, from ODConv's ResNet for a like-for-like comparison:
# - both 3x3 convs of every block are WeightNet convs (M = 2, G = 2, gates
#   sigmoid(FC(x_gap)), kernel = grouped FC of the gates), as every block conv
#   of their ShuffleNetV2;
# - x_gap = FC(GAP(X)) to max(16, C_in / 16) per conv (their ShuffleNetV2
#   shares one reduction per block; a ResNet block's second conv reads another
#   input than its first, so each conv reduces its own);
# - the stem, the downsample 1x1 convs and the classifier static (their
#   first and last convs and classifier are static; ODConv's ResNet keeps the
#   downsample convs static);
# - their initialisation of the WeightNet convs (N(0, std = 1 / shape[1]) of
#   MegEngine's weight: 1 / fan-in for the reduction and fc1, 2 / (C_in k^2)
#   for the grouped fc2; docs/initialisation.md), ODConv's ResNet's for the
#   static layers and every BatchNorm gamma 1; no dropout (their
#   ShuffleNetV2 below 2.0x has none).
_base_ = './dynamic_resnet18.py'

model = dict(
    backbone=dict(
        method='weightnet',
        with_kr=False,
        static_layers=['conv1', '*.downsample.*']))
