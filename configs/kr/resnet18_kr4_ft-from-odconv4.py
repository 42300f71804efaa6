# ResNet-18 + KR (4x) fine-tuned from a trained ODConv ResNet-18 (4x), e.g.
# its authors' ImageNet weights, with the schedule of the fine-tuning from a
# static ResNet-18. Make the start checkpoint first; at step 0 it gives the
# ODConv network's logits (docs/converters.md):
#   python tools/model_converters/odconv_to_mmkr.py od_resnet18_4x.pth.tar \
#       checkpoints/resnet18_odconv4_in1k
#   python tools/model_converters/static_to_kr.py \
#       configs/kr/resnet18_kr4_ft-from-odconv4.py \
#       checkpoints/resnet18_odconv4_in1k-<hash>.pth \
#       checkpoints/resnet18_kr4_from-odconv4.pth
_base_ = ['./resnet18_kr4_ft-from-static.py']

# ODConv's BatchNorm in the attention trunk, whose trained statistics the
# converted layers keep; the trained network ran at T = 1, so there is
# nothing to anneal (no temperature hook, as in the base).
model = dict(backbone=dict(attention_norm='bn'))

load_from = 'checkpoints/resnet18_kr4_from-odconv4.pth'
