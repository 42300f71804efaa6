# ResNet-18 + KR on KernelWarehouse (4x) fine-tuned from a trained
# KernelWarehouse ResNet-18 (4x), e.g. its authors' ImageNet weights, on the
# KernelWarehouse recipe shortened to 20 epochs. Make the start checkpoint
# first; at step 0 it gives the KernelWarehouse network's logits
# (docs/converters.md):
#   python tools/model_converters/kernelwarehouse_to_mmkr.py \
#       kw4x_resnet18.pth checkpoints/resnet18_kw4x_in1k
#   python tools/model_converters/static_to_kr.py \
#       configs/kr/resnet18_kw4x_kr_ft-from-kw4x.py \
#       checkpoints/resnet18_kw4x_in1k-<hash>.pth \
#       checkpoints/resnet18_kw4x_kr_from-kw4x.pth
# The schedule is a starting point, not a tuned recipe.
_base_ = ['./resnet18_kw4x_kr.py']

load_from = 'checkpoints/resnet18_kw4x_kr_from-kw4x.pth'

# The trained network ran at τ = 0, which the converted layers keep:
# annealing from τ = 1 would replace its attentions by the initial
# assignment, so there is no temperature hook.
custom_hooks = []

optim_wrapper = dict(optimizer=dict(lr=4e-4))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True,
    T_max=20)
train_cfg = dict(max_epochs=20)
