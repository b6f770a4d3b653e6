"""The one place that knows where the project's folders are.

``DATA_DIR``: the bundled data (``data/models``, ``data/lenses``, ...) next to the package.
``cache_dir()``: where converted models and other derived files are kept (``$INTERP_CACHE``, else
``~/.cache/interp``); created on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it, ``parts``), created if missing."""
    root = Path(os.environ.get("INTERP_CACHE") or Path.home() / ".cache" / "interp").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
