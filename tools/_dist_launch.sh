#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: run tools/SCRIPT on NUM_PROCESSES processes
# per node through swin_mm_dev.launch (torchrun with its arguments checked first, a free
# port on one node, and a failed run summed up in one line per problem).
# One node: nothing to set; two runs on one machine each take a free port (or set PORT).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as in torchrun (PORT default 29500).
# PYTHON picks the interpreter (default: the repo's .venv if present).
set -euo pipefail
TOOLS=$(cd "$(dirname "$0")" && pwd)
SCRIPT=$1
NUM_PROCESSES=$2
if [[ -z ${PYTHON:-} ]]; then
  PYTHON=python
  [[ -x $TOOLS/../.venv/bin/python ]] && PYTHON=$TOOLS/../.venv/bin/python
fi
exec "$PYTHON" -m swin_mm_dev.launch "$TOOLS/$SCRIPT" "$NUM_PROCESSES" "${@:3}"
