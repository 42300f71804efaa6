#!/usr/bin/env bash
# Creates .venv with everything mmkr, its tools and its test suite need, from
# the package registries (and, where present, the prebuilt full mmcv of
# ../shared/wheels, which lets the MMDetection / MMSegmentation tests run for
# real).
#
#   bash tools/setup_env.sh              # set up (again)
#   bash tools/setup_env.sh --if-needed  # only if .venv was not set up from
#                                        # these requirements yet
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# What a set-up depends on; a finished one leaves its fingerprint in STAMP.
STAMP="$VENV/.mmkr-setup"
fingerprint() { cat requirements/*.txt setup.py tools/setup_env.sh | sha256sum | cut -d' ' -f1; }
if [ "${1:-}" = "--if-needed" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(fingerprint)" ]; then
    exit 0
fi

"$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip 'setuptools<82' wheel
$PIP install -q -r requirements/runtime.txt

MMCV_WHEEL=$(ls ../shared/wheels/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl 2>/dev/null || true)
if [ -n "$MMCV_WHEEL" ] && "$VENV/bin/python" -c 'import sys, platform; sys.exit(not (sys.version_info[:2] == (3, 11) and platform.machine() == "x86_64"))'; then
    $PIP install -q "$MMCV_WHEEL" -r requirements/downstream.txt
else
    $PIP install -q 'mmcv-lite==2.1.0'
fi
$PIP install -q --no-build-isolation -e '.[tests,visualization]'
"$VENV/bin/python" -c 'import mmkr, mmcv, mmpretrain, torch; print(f"mmkr {mmkr.__version__}, mmpretrain {mmpretrain.__version__}, mmcv {mmcv.__version__}, torch {torch.__version__}")'
fingerprint > "$STAMP"
