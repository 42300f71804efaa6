# ViT-Tiny (DeiT-Tiny) on ImageNet-1k: mmpretrain's own config (4 GPUs x 256)
# written for 8 GPUs x 128 images.
_base_ = 'mmpretrain::deit/deit-tiny_4xb256_in1k.py'

custom_imports = dict(imports=['mmkr'], allow_failed_imports=False)

train_dataloader = dict(batch_size=128)
