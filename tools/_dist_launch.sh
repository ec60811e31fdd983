#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: run tools/SCRIPT on NUM_PROCESSES processes
# per node with torch.distributed.run. Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT
# as in torchrun. PYTHON picks the interpreter (default: the repo's .venv if present).
set -euo pipefail
TOOLS=$(cd "$(dirname "$0")" && pwd)
SCRIPT=$1
NUM_PROCESSES=$2
if [[ -z ${PYTHON:-} ]]; then
  PYTHON=python
  [[ -x $TOOLS/../.venv/bin/python ]] && PYTHON=$TOOLS/../.venv/bin/python
fi
# The workers stop if this process (torchrun, after exec) dies: swin_mm_dev/resume/launcher.py
export SWIN_MM_LAUNCHER_PID=$$
exec "$PYTHON" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
  --nproc_per_node="$NUM_PROCESSES" \
  "$TOOLS/$SCRIPT" "${@:3}" --launcher pytorch
