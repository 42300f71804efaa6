# KR ViT-Nano (see vit_nano.py for the size). 1x: kernel_num=1.
_base_ = './kr_vit_tiny.py'

model = dict(
    backbone=dict(
        backbone=dict(
            arch=dict(
                _delete_=True,
                embed_dims=128,
                num_layers=12,
                num_heads=2,
                feedforward_channels=512))),
    head=dict(in_channels=128))
