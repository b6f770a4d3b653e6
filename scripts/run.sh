#!/usr/bin/env bash
# The main job: set up if needed, then write report.html from the bundled `stories` model.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
interp report --out "${1:-report.html}"
