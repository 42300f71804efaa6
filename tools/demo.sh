#!/usr/bin/env bash
# The main demo job, on a fresh clone too: sets up .venv where needed
# (tools/setup_env.sh --if-needed), writes scikit-learn's digits to
# data/digits on first use, trains the KR-ResNet-18 (4x) demo on CPU
# (configs/demo/resnet18_kr4_digits.py, evaluated every epoch), tests its
# last checkpoint, prints the accuracy and draws what the model does:
#
#   WORK_DIR/pictures/attention_stats.png   kernel-attention entropy, mean
#       attentions, ||d|| and T per stage over the run (AttentionStatsHook)
#   WORK_DIR/pictures/kernel_attention.png  mean kernel attention per class
#       and layer (vis_attention.py)
#   WORK_DIR/pictures/cam.png               Grad-CAM of one val digit per
#       class at the last layer of stages 1-3 (vis_cam.py)
#
# Further arguments go to tools/train.py, e.g.
#   bash tools/demo.sh --cfg-options train_cfg.max_epochs=1
# CONFIG and WORK_DIR may be set in the environment, e.g.
#   CONFIG=configs/demo/resnet18_odconv4_digits.py bash tools/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-configs/demo/resnet18_kr4_digits.py}
WORK_DIR=${WORK_DIR:-work_dirs/$(basename "$CONFIG" .py)}
PICTURES=$WORK_DIR/pictures
PY=.venv/bin/python

bash tools/setup_env.sh --if-needed
$PY tools/dataset_converters/prepare_digits_demo.py --out-dir data/digits
$PY tools/train.py "$CONFIG" --work-dir "$WORK_DIR" "$@"

# last_checkpoint names its checkpoint relative to the work dir
CHECKPOINT=$(cat "$WORK_DIR/last_checkpoint")
case $CHECKPOINT in /* | *://*) ;; *) CHECKPOINT=$WORK_DIR/$CHECKPOINT ;; esac
$PY tools/test.py "$CONFIG" "$CHECKPOINT" --work-dir "$WORK_DIR/test" \
    | tee "$WORK_DIR/test.log"
ACCURACY=$(grep -o 'accuracy/top1: [0-9.]*' "$WORK_DIR/test.log" | tail -n 1)

$PY tools/visualization/plot_attention_stats.py "$WORK_DIR" \
    --out "$PICTURES/attention_stats.png"
$PY tools/visualization/vis_attention.py "$CONFIG" "$CHECKPOINT" \
    --out "$PICTURES/kernel_attention.png"
$PY tools/visualization/vis_cam.py "$CONFIG" "$CHECKPOINT" \
    $(for digit in 0 1 2 3 4 5 6 7 8 9; do ls data/digits/val/$digit/*.png | head -n 1; done) \
    --target-layers layer1.1.conv2 layer2.1.conv2 layer3.1.conv2 \
    --size 64 --out "$PICTURES/cam.png"

echo
echo "Demo done: $CONFIG"
echo "  val ${ACCURACY:-accuracy/top1: ?} (%) with $CHECKPOINT"
echo "  pictures: $PICTURES/{attention_stats,kernel_attention,cam}.png"
echo "  curves:   .venv/bin/tensorboard --logdir $WORK_DIR"
