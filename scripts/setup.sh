#!/usr/bin/env bash
# Set up .venv with the workbench and its test tools. Idempotent: a second run does (almost) nothing.
# On a machine without an NVIDIA GPU it installs the CPU build of torch (no CUDA downloads); a torch
# that is already importable in the venv (e.g. your own CUDA build) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.interp-setup
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && python -c "import interp, torch, transformer_lens" 2>/dev/null; then
  exit 0
fi
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! python -c "import torch" 2>/dev/null; then
  # TORCH_SPEC lets a GPU user choose; the default is the CPU build this project is tested with.
  spec=${TORCH_SPEC:-torch==2.13.0}
  echo "setup: installing $spec"
  python -m pip install -q "$spec"
fi
echo "setup: installing the workbench (editable) with notebook and test extras"
python -m pip install -q -e ".[notebook,test]"
touch "$stamp"
