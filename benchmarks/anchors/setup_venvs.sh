#!/usr/bin/env bash
# One virtual environment per framework for benchmarks/anchors/run.py, under benchmarks/anchors/venvs/.
# torch is pinned to the CPU build 2.13.0 and installed FIRST in each, so no framework's
# dependencies can pull another torch (e.g. a multi-GB CUDA wheel).
#   plain   torch + numpy only
#   flower  + flwr[simulation] (Flower's Ray-based simulation engine) from the package registry
#   fedsim  + this checkout (pip install -e)
# Re-running is cheap: an environment that is complete (its .done stamp) is left alone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
TORCH="${TORCH:-torch==2.13.0}"
FLWR="${FLWR:-flwr[simulation]}"
make_env() {  # name, pip args...
  local name=$1; shift
  local env="$here/venvs/$name"
  [ -f "$env/.done" ] && { echo "$name: ready ($env)"; return; }
  echo "$name: creating $env"
  "$PYTHON" -m venv "$env"
  "$env/bin/python" -m pip install --quiet --upgrade pip
  "$env/bin/python" -m pip install --quiet "$TORCH" numpy
  [ $# -gt 0 ] && "$env/bin/python" -m pip install --quiet "$@"
  "$env/bin/python" -c "import torch; assert torch.__version__.startswith('${TORCH#torch==}'), torch.__version__"
  touch "$env/.done"
  echo "$name: ready"
}
make_env plain
make_env flower "$FLWR"
make_env fedsim -e "$repo"
