# What Mask R-CNN adds to a Faster R-CNN config of MMDetection 3.x: the
# differences of mmdet::_base_/models/mask-rcnn_r50_fpn.py and
# datasets/coco_instance.py from faster-rcnn_r50_fpn.py and
# coco_detection.py (the mask head, low-quality matches in the R-CNN
# assigner, masks in the data, the segm metric). A Mask R-CNN config takes
# its Faster R-CNN twin and this file as its bases and sets
#     model = _base_.mask_rcnn_model
#     train_pipeline = _base_.instance_train_pipeline
#     test_pipeline = _base_.instance_test_pipeline
#     train_dataloader = _base_.instance_train_dataloader
#     val_dataloader = test_dataloader = _base_.instance_test_dataloader
#     val_evaluator = test_evaluator = _base_.segm_evaluator
mask_rcnn_model = dict(
    type='MaskRCNN',
    data_preprocessor=dict(pad_mask=True),
    roi_head=dict(
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            in_channels=256,
            conv_out_channels=256,
            num_classes=80,
            loss_mask=dict(
                type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(
        rcnn=dict(assigner=dict(match_low_quality=True), mask_size=28)),
    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))

instance_train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
instance_test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
instance_train_dataloader = dict(
    dataset=dict(pipeline=instance_train_pipeline))
instance_test_dataloader = dict(dataset=dict(pipeline=instance_test_pipeline))
segm_evaluator = dict(metric=['bbox', 'segm'])
