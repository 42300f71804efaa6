# Mask R-CNN with a KR (4x) ResNet-50 backbone and FPN on COCO
# (MMDetection 3.x, 8 GPUs x 2 images, 1x schedule): its Faster R-CNN twin
# faster-rcnn_kr4-resnet50_fpn_1x_coco.py
# with MMDetection's mask head and instance annotations, as ODConv's
# object_detection/configs/odconv/mask_rcnn_odconv4x_r50_fpn_1x_coco.py
# is its Faster R-CNN config with them (MMDetection 2.x).
_base_ = [
    './faster-rcnn_kr4-resnet50_fpn_1x_coco.py',
    '../_base_/mask-rcnn_over-faster-rcnn.py',
]

model = _base_.mask_rcnn_model
train_pipeline = _base_.instance_train_pipeline
test_pipeline = _base_.instance_test_pipeline
train_dataloader = _base_.instance_train_dataloader
val_dataloader = test_dataloader = _base_.instance_test_dataloader
val_evaluator = test_evaluator = _base_.segm_evaluator
