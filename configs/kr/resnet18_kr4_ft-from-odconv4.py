# ResNet-18 + KR (4x) fine-tuned from a trained ODConv ResNet-18 (4x), e.g.
# its authors' ImageNet weights. Make the start checkpoint first; at step 0
# it gives the ODConv network's logits (docs/converters.md):
#   python tools/model_converters/odconv_to_mmkr.py od_resnet18_4x.pth.tar \
#       checkpoints/resnet18_odconv4_in1k
#   python tools/model_converters/dynamic_to_kr.py \
#       configs/kr/resnet18_kr4_ft-from-odconv4.py \
#       checkpoints/resnet18_odconv4_in1k-<hash>.pth \
#       checkpoints/resnet18_kr4_from-odconv4.pth
# The schedule is a starting point, not a tuned recipe.
_base_ = ['./resnet18_kr4.py']

# ODConv's BatchNorm in the attention trunk, whose trained statistics the
# converted layers keep.
model = dict(backbone=dict(attention_norm='bn'))

load_from = 'checkpoints/resnet18_kr4_from-odconv4.pth'

# The trained ODConv network ran at T = 1; there is nothing to anneal.
custom_hooks = []

optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', by_epoch=True, T_max=20)
train_cfg = dict(max_epochs=20)
