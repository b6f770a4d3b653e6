"""Static figure export (interp.viz.export, ``interp figure``) with Debian's Chromium through kaleido, offline: PNGs
have a valid header and the figure's size, SVGs parse and carry the title text, the page kaleido draws in loads only
local files, and every CLI kind writes its file."""

from __future__ import annotations

import json
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import plotly.graph_objects as go
import pytest

from interp.cli import main
from interp.viz.common import base_layout
from interp.viz.export import chromium_path, figure_bytes, kaleido_options, save_figure, save_figures

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TITLE = "sinks & lens <of> 'mia'"


@pytest.fixture(scope="module", autouse=True)
def _chromium():
    if not Path(chromium_path()).exists():  # chromium_path raises InterpError when there is none
        pytest.fail("no Chromium for export (apt-get install chromium)")


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk (the first chunk after the 8-byte signature)."""
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _figure() -> go.Figure:
    fig = go.Figure(go.Scatter(x=[0, 1, 2], y=[0.1, 0.7, 0.4], mode="lines+markers", name="p"))
    return base_layout(fig, TITLE)  # the workbench's escaping of figure text


def _svg_text(data: bytes) -> str:
    root = ET.fromstring(data.decode("utf-8"))  # parses: a well-formed SVG document
    assert root.tag.endswith("svg")
    return " ".join("".join(root.itertext()).split())


def test_png_has_a_valid_header_and_the_figure_size(tmp_path):
    path = save_figure(_figure(), tmp_path / "f.png", width=400, height=300, scale=2)
    data = path.read_bytes()
    assert _png_size(data) == (800, 600)  # width * scale, height * scale
    assert data.endswith(b"IEND\xaeB`\x82")  # a whole file: it ends with the IEND chunk (its CRC is fixed)
    # without a size, the figure's own layout size
    fig = _figure().update_layout(width=520, height=260)
    assert _png_size(figure_bytes(fig, "png")) == (520, 260)


def test_svg_parses_and_holds_the_title(tmp_path):
    path = save_figure(_figure(), tmp_path / "f.svg", width=500, height=320)
    root = ET.fromstring(path.read_text(encoding="utf-8"))
    assert root.get("width") == "500" and root.get("height") == "320"
    assert TITLE in _svg_text(path.read_bytes())  # escaped for plotly, the reader sees the text itself


def test_several_figures_from_one_browser_session(tmp_path):
    second = go.Figure(go.Bar(x=["a", "b"], y=[1, 2]), layout=dict(title="second figure", width=300, height=200))
    a, b = save_figures([(_figure(), tmp_path / "a.png"), (second, tmp_path / "b.svg")], scale=1)
    assert _png_size(a.read_bytes()) == (700, 500)  # no size in the figure: kaleido's default
    assert "second figure" in _svg_text(b.read_bytes())
    # each file is what the one-figure call writes: the same figure gives the same bytes (plotly.js's random SVG ids fixed)
    assert b.read_bytes() == figure_bytes(second, "svg")
    assert a.read_bytes() == figure_bytes(_figure(), "png")
    assert second.data[0].uid is None  # the caller's figure is left as it was


def test_the_page_kaleido_draws_in_loads_only_local_files():
    from kaleido._page_generator import PageGenerator

    opts = kaleido_options()
    page = PageGenerator(plotly=opts["plotlyjs"], mathjax=opts["mathjax"]).generate_index()
    assert "mathjax" not in page.lower() and "http://" not in page and "https://" not in page
    assert Path(opts["plotlyjs"]).is_file()


@pytest.mark.parametrize(("kind", "suffix", "extra"), [
    ("lens", "png", ["--target", "the", "--width", "640", "--height", "320"]),
    ("sinks", "svg", []),
    ("attribution", "png", ["--method", "gradient_norm"]),
    ("compare", "svg", ["--model", "bb", "--model-b", "bb", "--prompt", "XfXgFA2CFr"]),
])
def test_cli_writes_each_kind(tmp_path, kind, suffix, extra, capsys):
    out = tmp_path / f"{kind}.{suffix}"
    assert main(["figure", kind, "--out", str(out), "--threads", "1", *extra]) == 0
    assert "wrote" in capsys.readouterr().out
    data = out.read_bytes()
    if suffix == "png":
        w, h = _png_size(data)
        assert (w, h) == ((640, 320) if kind == "lens" else (700, h))  # given, or 700 wide when the figure sets no width
        assert h >= 100
    else:
        text = _svg_text(data)
        assert {"sinks": "mean attention on the first token", "compare": "bb vs bb on the same text"}[kind] in text


def test_cli_converts_a_saved_figure(tmp_path):
    src = tmp_path / "fig.json"
    _figure().update_layout(width=450, height=250).write_json(src)
    out = tmp_path / "fig.png"
    assert main(["figure", "json", "--from", str(src), "--out", str(out)]) == 0
    assert _png_size(out.read_bytes()) == (450, 250)
    svg = tmp_path / "fig.svg"
    assert main(["figure", "json", "--from", str(src), "--out", str(svg), "--width", "300"]) == 0
    assert TITLE in _svg_text(svg.read_bytes())
    assert json.loads(src.read_text())["layout"]["width"] == 450  # the source is left as it was
