#!/usr/bin/env bash
# Distributed testing: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py options]
# Multi-node variables: see _dist_launch.sh.
set -euo pipefail
if (( $# < 3 )); then
  echo "usage: $0 CONFIG CHECKPOINT NUM_PROCESSES [test.py options]" >&2
  exit 2
fi
exec "$(dirname "$0")/_dist_launch.sh" test.py "$3" "$1" "$2" "${@:4}"
