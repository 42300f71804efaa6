#!/usr/bin/env bash
# The test suite, on a fresh clone too: sets up .venv first where it is
# missing or older than the requirements (tools/setup_env.sh --if-needed),
# then runs pytest: on tests/, or on what the arguments name
# (e.g. tests/test_backbone.py -k static).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh --if-needed
if [ $# -eq 0 ]; then set -- tests; fi
exec .venv/bin/python -m pytest "$@"
