# ResNet-18 + KR (4x) fine-tuned from a static ResNet-18 (e.g. mmpretrain's
# ImageNet-1k weights) instead of trained from scratch. Make the start
# checkpoint first; at step 0 it gives the static model's logits:
#   python tools/model_converters/static_to_kr.py configs/kr/resnet18_kr4.py \
#       https://download.openmmlab.com/mmclassification/v0/resnet/resnet18_8xb32_in1k_20210831-fbbb1da6.pth \
#       checkpoints/resnet18_kr4_from-static.pth
# The schedule is a starting point, not a tuned recipe.
_base_ = ['./resnet18_kr4.py']

load_from = 'checkpoints/resnet18_kr4_from-static.pth'

# The converted attention heads start at zero: their logits do not depend on
# the temperature, so there is nothing to anneal and T stays at 1.
custom_hooks = []

optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', by_epoch=True, T_max=20)
train_cfg = dict(max_epochs=20)
