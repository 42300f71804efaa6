# Faster R-CNN with a KR (4x) MobileNetV2 1.0x backbone and FPN on COCO
# (MMDetection 3.x, 8 GPUs x 2 images, 1x schedule): the ODConv (4x) config
# faster-rcnn_odconv4-mobilenet-v2_fpn_1x_coco.py with KR layers (LayerNorm
# attention trunk, d of 64). The backbone checkpoint is the ImageNet
# classifier's of configs/kr/mobilenet-v2_kr4.py, loaded with
# prefix='backbone.'.
_base_ = './faster-rcnn_odconv4-mobilenet-v2_fpn_1x_coco.py'

pretrained = 'checkpoints/mobilenet-v2_kr4_in1k.pth'

model = dict(
    backbone=dict(
        with_kr=True,
        kr_dims=64,
        attention_norm='ln',
        init_cfg=dict(checkpoint=pretrained)))
