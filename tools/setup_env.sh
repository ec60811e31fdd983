#!/usr/bin/env bash
# Create (or update) the repo-local virtual environment with the known-good stack.
# Idempotent: a stamp records the hash of the dependency files, so a second run
# with nothing changed returns in a second. mmcv 2.1.0 has no wheel on PyPI and
# is built with its C++ ops once; pip caches the wheel for later runs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
stamp="$VENV/.swin_mm_setup"
want=$(cat setup.cfg requirements-constraints.txt tools/setup_env.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
# The machine's pip config prefers a CPU-only torch wheel that has no matching
# torchvision; ignore it and use PyPI's builds, which also run on CPU.
pip_install() {
  env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$VENV/bin/python" -m pip install -c requirements-constraints.txt "$@"
}
pip_install torch torchvision "setuptools>=77,<80" wheel ninja "numpy<2.3"
if ! "$VENV/bin/python" -c "import mmcv.ops" 2>/dev/null; then
  MMCV_WITH_OPS=1 pip_install --no-build-isolation mmcv==2.1.0
fi
pip_install -e ".[test]"
echo "$want" > "$stamp"
