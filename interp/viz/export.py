"""Static export of any plotly figure to PNG or SVG, offline: ``save_figure(fig, "out.png")``.

Plotly renders static images with kaleido (1.x), which drives a headless Chromium. The workbench never downloads a
browser (kaleido's ``get_chrome``) and never lets the page fetch anything: it points kaleido at a Chromium already
on the machine (``chromium_path``: ``$INTERP_CHROMIUM``, ``$BROWSER_PATH``, Debian's ``chromium`` package, or a
Chrome on the ``PATH``), gives it plotly.js from the installed plotly package, and turns MathJax off (kaleido would
otherwise load it from a CDN). Without a Chromium, or without kaleido, export raises an ``InterpError`` saying what
to install. Each call starts the browser once (a few seconds); the figure itself draws in well under a second.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import plotly.graph_objects as go

from interp.errors import InterpError
from interp.io import atomic_write

__all__ = ["FORMATS", "chromium_path", "kaleido_options", "figure_bytes", "save_figure"]

FORMATS = ("png", "svg")
"""The static formats written."""

_CANDIDATES = ("/usr/lib/chromium/chromium",)  # Debian's binary itself: its /usr/bin/chromium wrapper prints on stdout
_ON_PATH = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_INSTALL = "install Debian's chromium (apt-get install chromium) or set INTERP_CHROMIUM to a Chrome/Chromium binary"


def chromium_path() -> str:
    """The Chromium/Chrome binary used for export: ``$INTERP_CHROMIUM`` or ``$BROWSER_PATH`` when set (it must exist),
    else Debian's ``/usr/lib/chromium/chromium``, else the first of chromium / chromium-browser / google-chrome on the
    ``PATH``. Raises ``InterpError`` when there is none (the workbench never downloads a browser)."""
    for var in ("INTERP_CHROMIUM", "BROWSER_PATH"):
        value = os.environ.get(var)
        if value:
            if not (Path(value).is_file() and os.access(value, os.X_OK)):
                raise InterpError(f"${var} is {value!r}, which is not an executable file: point it at a Chrome or Chromium binary")
            return value
    for path in _CANDIDATES:
        if Path(path).is_file() and os.access(path, os.X_OK):
            return path
    for name in _ON_PATH:
        found = shutil.which(name)
        if found:
            return found
    raise InterpError(f"static figure export needs a Chromium and none was found: {_INSTALL}")


def _format(fmt: str) -> str:
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise InterpError(f"cannot export a figure as {fmt!r}: choose one of {', '.join(FORMATS)} (the file name's suffix)")
    return fmt


def _size(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 20000:
        raise InterpError(f"{name} must be a positive number of pixels (at most 20000), got {value!r}")
    return value


def kaleido_options(timeout: float = 90.0) -> dict:
    """The options kaleido is started with: the machine's Chromium (``chromium_path``), plotly.js from the installed
    plotly package (so the page loads nothing from a network), MathJax off (kaleido's default loads it from a CDN).
    Raises ``InterpError`` when kaleido is not installed or there is no Chromium."""
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise InterpError("static figure export needs kaleido (pip install 'kaleido>=1'); it uses the machine's "
                          "Chromium and downloads nothing") from None
    import plotly

    plotlyjs = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not plotlyjs.is_file():
        raise InterpError(f"the installed plotly has no {plotlyjs.name} to draw with offline: reinstall plotly")
    return {"path": chromium_path(), "mathjax": False, "plotlyjs": str(plotlyjs), "timeout": timeout}


def figure_bytes(fig: go.Figure | dict, fmt: str = "png", *, width: int | None = None, height: int | None = None,
                 scale: float = 1.0, timeout: float = 90.0) -> bytes:
    """The figure rendered as ``fmt`` ("png" or "svg"): PNG bytes, or the SVG document's UTF-8 bytes.

    ``width`` / ``height``: the layout size in CSS pixels (default: the figure's own ``layout.width`` / ``height``,
    else 700 x 500); ``scale``: pixels per CSS pixel (a PNG of ``width * scale`` x ``height * scale`` pixels).
    Raises ``InterpError`` when there is no Chromium or no kaleido, for a bad size, or when the browser fails.
    """
    fmt = _format(fmt)
    fig = fig if isinstance(fig, go.Figure) else go.Figure(fig)
    width = _size("width", width if width is not None else fig.layout.width) or 700
    height = _size("height", height if height is not None else fig.layout.height) or 500
    scale = _size("scale", scale)
    kopts = kaleido_options(timeout)
    import kaleido

    opts = {"format": fmt, "width": width, "height": height, "scale": scale}
    try:
        data = kaleido.calc_fig_sync(fig.to_dict(), opts=opts, kopts=kopts)
    except Exception as e:  # kaleido and choreographer raise their own types for a browser that fails or hangs
        detail = " ".join(str(e.args[0] if e.args else e).split())[:200]  # the cause, without kaleido's advice to download Chrome
        raise InterpError(f"the figure could not be rendered with {kopts['path']}: {type(e).__name__}: {detail} "
                          f"({_INSTALL})") from None
    if isinstance(data, str):
        data = data.encode("utf-8")
    return bytes(data)


def save_figure(fig: go.Figure | dict, path: str | Path, *, fmt: str | None = None, width: int | None = None,
                height: int | None = None, scale: float = 1.0) -> Path:
    """Write ``fig`` to ``path`` as PNG or SVG (``fmt``, default: the path's suffix), atomically; returns the path.
    Sizes as in ``figure_bytes``. Raises ``InterpError`` for an unknown format, no Chromium, or an unwritable path."""
    path = Path(path)
    if fmt is None and not path.suffix:
        raise InterpError(f"{path} has no suffix: name the file .png or .svg (or pass fmt=)")
    fmt = _format(fmt if fmt is not None else path.suffix)
    data = figure_bytes(fig, fmt, width=width, height=height, scale=scale)
    return atomic_write(path, lambda p: p.write_bytes(data))
