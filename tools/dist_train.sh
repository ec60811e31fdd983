#!/usr/bin/env bash
# Distributed training: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py options]
# One process per GPU (or per CPU process with gloo when there is no CUDA).
# Multi-node variables: see _dist_launch.sh.
set -euo pipefail
if (( $# < 2 )); then
  echo "usage: $0 CONFIG NUM_PROCESSES [train.py options]" >&2
  exit 2
fi
exec "$(dirname "$0")/_dist_launch.sh" train.py "$2" "$1" "${@:3}"
