"""Static export of any plotly figure to PNG or SVG, offline: ``save_figure(fig, "out.png")``.

Plotly renders static images with kaleido (1.x), which drives a headless Chromium. The workbench never downloads a
browser (kaleido's ``get_chrome``) and never lets the page fetch anything: it points kaleido at a Chromium already
on the machine (``chromium_path``: ``$INTERP_CHROMIUM``, ``$BROWSER_PATH``, Debian's ``chromium`` package, or a
Chrome on the ``PATH``), gives it plotly.js from the installed plotly package, and turns MathJax off (kaleido would
otherwise load it from a CDN). Without a Chromium, or without kaleido, export raises an ``InterpError`` saying what
to install. Each call starts the browser once (most of an export's few seconds); ``save_figures`` writes several
figures from one browser session.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go

from interp.errors import InterpError
from interp.io import atomic_write

__all__ = ["FORMATS", "chromium_path", "kaleido_options", "figure_bytes", "save_figure", "save_figures"]

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


def _job(fig, fmt: str, width, height, scale) -> tuple[dict, dict]:
    """(figure dict, kaleido layout options) of one figure to render; checks the format and sizes."""
    fmt = _format(fmt)
    fig = fig if isinstance(fig, go.Figure) else go.Figure(fig)
    width = _size("width", width if width is not None else fig.layout.width) or 700
    height = _size("height", height if height is not None else fig.layout.height) or 500
    spec = fig.to_dict()
    for i, trace in enumerate(spec.get("data", [])):  # plotly.js names SVG ids after trace uids, random when unset
        trace.setdefault("uid", f"trace{i}")
    return spec, {"format": fmt, "width": width, "height": height, "scale": _size("scale", scale)}


_UID = re.compile(r'id="defs-([0-9a-f]{6})"')


def _same_ids(svg: bytes) -> bytes:
    """An SVG with plotly.js's random figure id (6 hex digits in its ``defs-``, ``clip``, gradient and legend ids)
    replaced by a fixed one, so the same figure gives the same bytes."""
    text = svg.decode("utf-8")
    found = _UID.search(text)
    if found is None:
        return svg
    uid = found.group(1)
    return re.sub(rf'(defs-|clip|legend|[#"]g){uid}', r"\g<1>figure", text).encode("utf-8")


def _render(jobs: list[tuple[dict, dict]], timeout: float) -> list[bytes]:
    """Render every (figure, options) job in one browser session (the browser starts once); returns their bytes.
    Runs in its own thread with its own event loop, so it works inside Jupyter's running loop too."""
    kopts = kaleido_options(timeout)
    import kaleido

    async def run() -> list:
        async with kaleido.Kaleido(**kopts) as k:
            return [await k.calc_fig(fig, opts=opts) for fig, opts in jobs]

    box: dict = {}

    def target() -> None:
        try:
            box["out"] = asyncio.run(run())
        except BaseException as e:  # noqa: BLE001 (handed to the caller's thread)
            box["error"] = e

    thread = threading.Thread(target=target, name="interp-figure-export")
    thread.start()
    thread.join()
    e = box.get("error")
    if e is not None:  # kaleido and choreographer raise their own types for a browser that fails or hangs
        if isinstance(e, KeyboardInterrupt):
            raise e
        detail = " ".join(str(e.args[0] if e.args else e).split())[:200]  # the cause, without kaleido's advice to download Chrome
        raise InterpError(f"the figure could not be rendered with {kopts['path']}: {type(e).__name__}: {detail} "
                          f"({_INSTALL})") from None
    out = [d.encode("utf-8") if isinstance(d, str) else bytes(d) for d in box["out"]]
    return [_same_ids(d) if opts["format"] == "svg" else d for d, (_, opts) in zip(out, jobs)]


def figure_bytes(fig: go.Figure | dict, fmt: str = "png", *, width: int | None = None, height: int | None = None,
                 scale: float = 1.0, timeout: float = 90.0) -> bytes:
    """The figure rendered as ``fmt`` ("png" or "svg"): PNG bytes, or the SVG document's UTF-8 bytes.

    ``width`` / ``height``: the layout size in CSS pixels (default: the figure's own ``layout.width`` / ``height``,
    else 700 x 500); ``scale``: pixels per CSS pixel (a PNG of ``width * scale`` x ``height * scale`` pixels).
    Raises ``InterpError`` when there is no Chromium or no kaleido, for a bad size, or when the browser fails.
    """
    return _render([_job(fig, fmt, width, height, scale)], timeout)[0]


def _path_format(path: Path, fmt: str | None) -> str:
    if fmt is None and not path.suffix:
        raise InterpError(f"{path} has no suffix: name the file .png or .svg (or pass fmt=)")
    return _format(fmt if fmt is not None else path.suffix)


def save_figure(fig: go.Figure | dict, path: str | Path, *, fmt: str | None = None, width: int | None = None,
                height: int | None = None, scale: float = 1.0) -> Path:
    """Write ``fig`` to ``path`` as PNG or SVG (``fmt``, default: the path's suffix), atomically; returns the path.
    Sizes as in ``figure_bytes``. Raises ``InterpError`` for an unknown format, no Chromium, or an unwritable path."""
    return save_figures([(fig, path)], fmt=fmt, width=width, height=height, scale=scale)[0]


def save_figures(items: Sequence[tuple[go.Figure | dict, str | Path]], *, fmt: str | None = None, width: int | None = None,
                 height: int | None = None, scale: float = 1.0) -> list[Path]:
    """Write each (figure, path) of ``items`` as ``save_figure`` does, rendering them all in one browser session (the
    browser's start, most of one export's time, is paid once). Everything is checked and rendered before the first file
    is written, each file atomically. Returns the paths."""
    items = list(items)
    if not items:
        raise InterpError("no figures to save: give a list of (figure, path) pairs")
    paths = [Path(p) for _, p in items]
    for p in paths:  # a path that cannot be written fails before any rendering or writing
        if p.is_dir():
            raise InterpError(f"cannot write {p}: it is a folder (give a file name such as {p / 'figure.png'})")
        if not (p.parent if str(p.parent) else Path(".")).is_dir():
            raise InterpError(f"cannot write {p}: folder {p.parent} does not exist (create it or choose another path)")
    jobs = [_job(fig, _path_format(p, fmt), width, height, scale) for (fig, _), p in zip(items, paths)]
    data = _render(jobs, 90.0)
    return [atomic_write(p, lambda tmp, d=d: tmp.write_bytes(d)) for p, d in zip(paths, data)]
