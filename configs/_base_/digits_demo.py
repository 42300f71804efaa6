# The demo recipe, shared by every config in configs/demo/ so that the demo
# models differ only in their method: scikit-learn's handwritten digits
# (32x32 RGB, 10 classes, written by
# tools/dataset_converters/prepare_digits_demo.py), 6 epochs of SGD with a
# cosine schedule, a validation and a checkpoint every epoch. A config adds
# its model (a quarter-width ResNet-18: stages of 16, 32, 64, 128 channels)
# and its method's hooks. No random augmentation: a digit must not be
# flipped, and a resumed run equals an uninterrupted one.
_base_ = ['./default_runtime.py']

# ----------------------------------------------------------------- data
dataset_type = 'CustomDataset'
data_root = 'data/digits'
data_preprocessor = dict(
    num_classes=10,
    # the digits' ink is bright on black: roughly their pixel statistics
    mean=[78., 78., 78.],
    std=[96., 96., 96.],
    to_rgb=False)
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='train',
        pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=64,
    num_workers=1,
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix='val',
        pipeline=pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# ------------------------------------------------------------- schedule
max_epochs = 6
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='CosineAnnealingLR', by_epoch=True, T_max=max_epochs, begin=0,
    end=max_epochs)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)

# ------------------------------------------------------------- runtime
# Scalars (losses, accuracy, the attention statistics of AttentionStatsHook)
# go to TensorBoard (`tensorboard --logdir work_dirs/<config>`) and to
# vis_data/scalars.json (tools/visualization/plot_attention_stats.py).
visualizer = dict(vis_backends=[
    dict(type='LocalVisBackend'),
    dict(type='TensorboardVisBackend'),
])
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    # the base's PreemptibleCheckpointHook
    checkpoint=dict(interval=1, max_keep_ckpts=2, save_best='accuracy/top1'))
randomness = dict(seed=0, deterministic=True)
# One torch thread: the thread count changes how the CPU splits its sums, and
# over 270 steps the run ends elsewhere (same seed, 1 or 2 threads: 13.6% or
# 53.6% after epoch 1). Fixed, machines with the same vector instructions
# compute the same sums whatever their number of cores; on 2 idle cores one
# thread costs about 20% more time than two.
env_cfg = dict(torch_num_threads=1)
