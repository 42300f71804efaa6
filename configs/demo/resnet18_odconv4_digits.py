# The demo job's comparison model: the same network with KR off (ODConv 4x,
# the plain linear head on pooled features), for vis_tsne.py's KR vs ODConv
# scores on the digits.
_base_ = ['./resnet18_kr4_digits.py']

model = dict(
    backbone=dict(with_kr=False, return_kr=False),
    neck=dict(_delete_=True, type='GlobalAveragePooling'),
    head=dict(_delete_=True, type='LinearClsHead', num_classes=10,
              in_channels=128, topk=(1, )))
