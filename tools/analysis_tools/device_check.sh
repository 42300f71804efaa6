#!/usr/bin/env bash
# One GPU check of at most 8 minutes on one GPU (150 s of CUDA tests, 60 s
# of ResNet-18 layers, 25 s per model run, each capped by `timeout`):
# pytest -m cuda, then benchmark.py with AMP at batch 64, rule of thumb and
# autotuned paths, each table followed by the paths the dynamic convs ran.
#
#   bash tools/analysis_tools/device_check.sh [OUT_DIR]
#
# Runs with $PYTHON (default: .venv/bin/python where it exists, else python3)
# from the repository root, mmkr importable from the checkout; that Python
# needs mmkr's dependencies (requirements/runtime.txt, mmcv-lite or mmcv, and
# pytest). Logs go to OUT_DIR (default: work_dirs/device_check).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-work_dirs/device_check}
mkdir -p "$OUT"
if [ -z "${PYTHON:-}" ]; then
    PYTHON=$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PYTHON" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' ||
    { echo 'device_check.sh: CUDA is not available' >&2; exit 2; }
status=0

echo '== CUDA tests (pytest -m cuda)'
timeout 150 "$PYTHON" -m pytest -m cuda -p no:xdist -o addopts='' -q \
    tests/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.log" || status=1

BENCH=(tools/analysis_tools/benchmark.py --device cuda --amp
       --batch-size 64 --repeat 3)
echo '== ResNet-18 layers: static, ODConv-style reference, kr-off, tuned'
timeout 60 "$PYTHON" "${BENCH[@]}" --layers --models resnet18 \
    --no-reference 2>/dev/null | tee "$OUT/layers.log" || status=1
for config in configs/kr/resnet18_kr1.py configs/kr/resnet18_kr4.py \
        configs/odconv/resnet18_odconv4.py configs/kr/mobilenet-v2-050_kr4.py \
        configs/kr/vit-tiny_kr4.py; do
    for path in rule autotune; do
        echo "== $config, conv_path=$path"
        args=()
        [ "$path" = autotune ] && args=(--conv-path autotune)
        timeout 25 "$PYTHON" "${BENCH[@]}" "$config" "${args[@]}" \
            2>/dev/null | tee -a "$OUT/models.log" || status=1
    done
done
exit $status
