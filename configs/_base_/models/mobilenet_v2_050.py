# MobileNetV2 0.5x: mmpretrain's MobileNetV2 at widen_factor 0.5 (the last
# 1x1 conv keeps its 1280 channels below widen 1.0, as in the paper).
_base_ = 'mmpretrain::_base_/models/mobilenet_v2_1x.py'

model = dict(backbone=dict(widen_factor=0.5))
