#!/usr/bin/env bash
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#     tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
#
# Preemption and requeue. On SIGTERM every task finishes its iteration, the
# state after it is saved as WORK_DIR/iter_N.pth (written atomically, and
# named in WORK_DIR/last_checkpoint) and the tasks stop; this script then
# exits with 75 (mmkr's PREEMPTED_EXIT_CODE), a failure with any other
# non-zero code. Pass --resume every time: it continues from the last
# complete checkpoint of WORK_DIR, or starts from scratch if there is none.
# A batch job that asks for SIGTERM 5 minutes before its time limit, and
# puts itself back in the queue when preempted:
#
#   #!/usr/bin/env bash
#   #SBATCH --requeue --signal=TERM@300 --time=24:00:00 ...
#   tools/slurm_train.sh PARTITION JOB CONFIG WORK_DIR --resume
#   STATUS=$?
#   if [ $STATUS -eq 75 ]; then scontrol requeue $SLURM_JOB_ID; fi
#   exit $STATUS
#
# Slurm's own preemption (PreemptMode=REQUEUE) sends the same SIGTERM and
# requeues by itself; its GraceTime, like --signal's lead time, must leave
# room for one iteration and one checkpoint write. The tasks record the
# preemption in a file under WORK_DIR, so the code does not depend on how
# srun reports tasks it stopped itself (--kill-on-bad-exit).

set -x

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=${@:5}

mkdir -p "${WORK_DIR}"
MMKR_PREEMPTED_FILE=$(mktemp -p "${WORK_DIR}" .preempted.XXXXXX)
export MMKR_PREEMPTED_FILE
# a SIGTERM for the whole job must not end this script before srun returns
trap : TERM

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
srun -p ${PARTITION} \
    --job-name=${JOB_NAME} \
    --gres=gpu:${GPUS_PER_NODE} \
    --ntasks=${GPUS} \
    --ntasks-per-node=${GPUS_PER_NODE} \
    --cpus-per-task=${CPUS_PER_TASK} \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    python -u tools/train.py ${CONFIG} --work-dir=${WORK_DIR} --launcher="slurm" ${PY_ARGS}
STATUS=$?
if [ -s "${MMKR_PREEMPTED_FILE}" ]; then
    STATUS=75
fi
rm -f "${MMKR_PREEMPTED_FILE}"
exit $STATUS
