"""The one place that knows where the project's folders are.

``DATA_DIR``: the bundled data (``data/models``, ``data/lenses``, ...) next to the package.
``cache_dir()``: where converted models and other derived files are kept (``$INTERP_CACHE``, else
``~/.cache/interp``); created on first use and checked once per process to be a folder this process can write.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from interp.errors import InterpError

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
_CHECKED: set[Path] = set()


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it, ``parts``), created if missing; returns its path.

    Raises ``InterpError`` naming ``INTERP_CACHE`` when the folder cannot be made (the path is a file, or lies under
    one) or a file cannot be written in it (read-only or no permission): one line, not an ``OSError`` from deep inside.
    """
    env = os.environ.get("INTERP_CACHE")
    root = Path(env or Path.home() / ".cache" / "interp").expanduser()
    path = root.joinpath(*parts)
    if path in _CHECKED and path.is_dir():
        return path
    where = f"INTERP_CACHE={env}" if env else f"the cache folder {root}"
    fix = "set INTERP_CACHE to a folder you can write"
    if path.exists() and not path.is_dir():
        raise InterpError(f"{where} is not usable: {path} is a file, not a folder; {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InterpError(f"{where} is not usable: cannot write {path} ({e.strerror or e}); {fix}") from None
    _CHECKED.add(path)
    return path
