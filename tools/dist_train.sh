#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG GPUS [train.py options]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# Without CUDA the same command trains on CPU processes over gloo.
#
# Preemption: on SIGTERM (sent to the whole process group, as Slurm and a
# terminal's kill -- -PGID do) the workers finish their iteration, save
# iter_N.pth and stop, and this script exits with 75 (mmkr's
# PREEMPTED_EXIT_CODE); run it again with --resume to continue. torchrun
# itself exits with 1 whenever a worker stops early, so the workers leave
# word in MMKR_PREEMPTED_FILE, and this script waits for torchrun (the trap
# keeps SIGTERM from ending it first) and turns that into 75. torchrun
# SIGKILLs workers still running 30 s after a SIGTERM it received
# (TORCH_ELASTIC_SHUTDOWN_TIMEOUT): time enough for an iteration and a
# checkpoint of a model this size.

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

MMKR_PREEMPTED_FILE=$(mktemp)
export MMKR_PREEMPTED_FILE
trap : TERM

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
python -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    $(dirname "$0")/train.py \
    $CONFIG \
    --launcher pytorch ${@:3}
STATUS=$?
if [ -s "$MMKR_PREEMPTED_FILE" ]; then
    STATUS=75
fi
rm -f "$MMKR_PREEMPTED_FILE"
exit $STATUS
