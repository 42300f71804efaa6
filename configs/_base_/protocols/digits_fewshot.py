# The protocol of the CPU proxy comparison (configs/demo/README.md), merged
# onto every compared demo config by
# tools/analysis_tools/compare_methods.py --protocol. On the full digits
# every method saturates (98-99% in 6 epochs); here each method learns
# from 18 digits per class and is scored on the other 1618 digits:
#   python tools/dataset_converters/prepare_digits_demo.py \
#       --out-dir data/digits_fewshot --val-ratio 0.9
# The 179 training digits are shown 3 times an epoch (RepeatDataset), so
# that the demo recipe keeps its shape: 6 epochs, cosine, the temperature
# annealed over the first epoch (17 iterations of 32, 102 in all).
data_root = 'data/digits_fewshot'
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=3,
        dataset=dict(
            type='CustomDataset',
            data_root=data_root,
            data_prefix='train',
            pipeline=pipeline)))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
# one validation, after the last epoch (the table reports that one), and
# one checkpoint kept per run
train_cfg = dict(val_interval=6)
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1, save_best=None))
