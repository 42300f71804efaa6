#!/usr/bin/env bash
# Creates .venv with everything mmkr, its tools and its test suite need, from
# the package registries: torch and torchvision, mmengine, mmpretrain, mmcv,
# mmkr itself (editable) with its test and picture tools
# (requirements/*.txt; docs/get_started.md says what each is for).
#
#   bash tools/setup_env.sh              # set up (again)
#   bash tools/setup_env.sh --if-needed  # only if .venv was not set up from
#                                        # these requirements yet
#
# Environment:
#   PYTHON           the Python that makes the venv (default: python3)
#   VENV             where the venv goes (default: .venv)
#   MMKR_MMCV_WHEEL  a prebuilt full mmcv 2.1.0 wheel (compiled ops) for this
#                    Python and torch. Where the file exists, it is installed
#                    with MMDetection and MMSegmentation
#                    (requirements/downstream.txt); otherwise mmcv-lite, which
#                    has no compiled ops, and neither framework. Default:
#                    ../shared/wheels/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# What a set-up depends on; a finished one leaves its fingerprint in STAMP.
STAMP="$VENV/.mmkr-setup"
fingerprint() { { cat requirements/*.txt setup.py tools/setup_env.sh; echo "${MMKR_MMCV_WHEEL:-}"; } | sha256sum | cut -d' ' -f1; }
if [ "${1:-}" = "--if-needed" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ]; then
    exit 0
fi

"$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip 'setuptools<82' wheel
$PIP install -q -r requirements/runtime.txt

MMCV_WHEEL=${MMKR_MMCV_WHEEL:-../shared/wheels/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl}
if [ -f "$MMCV_WHEEL" ]; then
    echo "setup_env.sh: full mmcv from $MMCV_WHEEL, with MMDetection and MMSegmentation"
    $PIP install -q "$MMCV_WHEEL" -r requirements/downstream.txt
else
    echo "setup_env.sh: no mmcv wheel at $MMCV_WHEEL: mmcv-lite (no compiled ops), no MMDetection / MMSegmentation (docs/get_started.md)"
    $PIP install -q 'mmcv-lite==2.1.0'
fi
$PIP install -q --no-build-isolation -e '.[tests,visualization]'
"$VENV/bin/python" -c 'import mmkr, mmcv, mmpretrain, torch; print(f"mmkr {mmkr.__version__}, mmpretrain {mmpretrain.__version__}, mmcv {mmcv.__version__}, torch {torch.__version__}")'
fingerprint > "$STAMP"
