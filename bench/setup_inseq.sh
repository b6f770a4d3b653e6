#!/usr/bin/env bash
# Build inseq (the peer tool of bench/attribution.py) in its own virtual environment, bench/.venv-inseq.
#
# inseq pins typeguard<=2.13.3, which cannot live beside transformer-lens, and on Linux it requires a dozen
# nvidia-*-cu11 wheels (several GB, useless on a CPU machine). So inseq is installed with --no-deps, its light
# pure-Python dependencies are installed into this venv, and torch / transformers / captum / tokenizers are
# reused from the main venv through a .pth file that is appended AFTER this venv's own site-packages (so the
# old typeguard here shadows the main venv's one).
set -euo pipefail
cd "$(dirname "$0")"
MAIN_PY=../.venv/bin/python
"$MAIN_PY" -m venv .venv-inseq
PY=.venv-inseq/bin/python
"$PY" -m pip install -q --no-deps "inseq==0.7.1"
"$PY" -m pip install -q "typeguard<=2.13.3" "jaxtyping>=0.2.25" "rich>=10.13.0" "treescope>=0.1.0" "matplotlib>=3.5.3" \
    "tqdm>=4.64.0" "protobuf>=4.25.8"
SITE=$("$PY" -c 'import site; print(site.getsitepackages()[0])')
MAIN_SITE=$("$MAIN_PY" -c 'import site; print(site.getsitepackages()[0])')
echo "$MAIN_SITE" > "$SITE/zz_main_venv.pth"
"$PY" -c "import importlib.metadata as md, inseq; print('inseq', md.version('inseq'), 'typeguard', md.version('typeguard'), 'transformers', md.version('transformers'))"
