#!/usr/bin/env bash
# Create (or update) a repo-local virtual environment for one of two stacks:
#   main   (.venv)            torch 2.13 + mmengine/mmcv with ops/mmdet/mmseg/mmpretrain/timm:
#                             the whole test suite and the demo;
#   compat (.venv-torch2.1)   torch 2.1.2, numpy<2, mmengine 0.10.7, mmcv 2.1.0 built without
#                             its ops (what a typical mmdet 3.3 user has), onnx 1.16 and
#                             onnxruntime 1.19: the backbone, conversion and loading tests
#                             against goldens made by main, and the ONNX export tests.
# Usage: tools/setup_env.sh [main|compat]. Idempotent: a stamp records the hash of the
# dependency files, so a second run with nothing changed returns at once. mmcv 2.1.0 has no
# wheel on PyPI: main builds it with its C++ ops once (~30 min on 2 cores) and pip caches it.
set -euo pipefail
cd "$(dirname "$0")/.."
STACK=${1:-main}
case $STACK in
  main) VENV=${VENV:-.venv}; constraints=requirements-constraints.txt ;;
  compat) VENV=${VENV:-.venv-torch2.1}; constraints=requirements-compat.txt ;;
  *) echo "setup_env.sh: expected main or compat, got $STACK" >&2; exit 2 ;;
esac
stamp="$VENV/.swin_mm_setup"
want=$(cat setup.cfg "$constraints" tools/setup_env.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
# The machine's pip config prefers a CPU-only torch wheel that has no matching
# torchvision; ignore it and use PyPI's builds, which also run on CPU.
pip_() {
  env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$VENV/bin/python" -m pip "$@"
}
pip_install() { pip_ install -q -c "$constraints" "$@"; }
if [[ $STACK == main ]]; then
  pip_install torch torchvision setuptools wheel ninja numpy
  if ! "$VENV/bin/python" -c "import mmcv.ops" 2>/dev/null; then
    MMCV_WITH_OPS=1 pip_install --no-build-isolation mmcv
  fi
  pip_install -e ".[det,seg,demo,test]"
else
  pip_install torch setuptools wheel numpy
  if ! "$VENV/bin/python" -c "import mmcv" 2>/dev/null; then
    # Built without its ops, mmcv names itself mmcv-lite, so pip must be given the file.
    sdist=$(mktemp -d)
    pip_ download -q -c "$constraints" --no-deps --no-binary :all: -d "$sdist" mmcv
    MMCV_WITH_OPS=0 pip_install --no-build-isolation "$sdist"/mmcv-*.tar.gz
    rm -rf "$sdist"
  fi
  pip_install mmengine pytest onnx onnxruntime
  # --no-deps: the requirement on mmcv cannot see a distribution called mmcv-lite.
  pip_install --no-deps -e .
fi
echo "$want" > "$stamp"
