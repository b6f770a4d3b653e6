"""The HTML report: one self-contained file, escaped, atomic; the CLI's errors are one line with exit 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import plotly.graph_objects as go
import pytest

from interp import InterpError
from interp.report import Report, TokenView, build_report

XSS = "<script>alert(1)</script>"


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts_with_src, self.tags, self.texts = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "script" and a.get("src"):
            self.scripts_with_src.append(a["src"])
        for k in ("src", "href"):
            if a.get(k) and tag != "a":
                self.scripts_with_src.append(a[k])

    def handle_data(self, data):
        self.texts.append(data)


def _parse(text: str) -> _Collect:
    p = _Collect()
    p.feed(text)
    p.close()
    return p


def test_report_is_self_contained_and_escaped(tmp_path):
    r = Report(f"title {XSS}")
    fig = go.Figure(go.Bar(x=[XSS, "b"], y=[1, 2], hovertext=[XSS, "</script>"]))
    r.add_figure(f"fig {XSS}", fig, caption=XSS)
    r.add_table("table", ["a", XSS], [[XSS, 1.23456789]])
    r.add_tokens("tokens", TokenView(["<b>", "&amp;", XSS], [1.0, -0.5, 0.0]))
    r.add_text("text", XSS)
    r.section("empty")
    html = r.save(tmp_path / "r.html").read_text()
    assert XSS not in html and "</script><script>" not in html.replace("</script>\n<script>", "")
    parsed = _parse(html)
    assert parsed.scripts_with_src == []  # nothing loaded from elsewhere
    assert html.count("Plotly.newPlot") == 1 and html.count("plotly.js v") <= 2  # the library inlined once
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Nothing to show in this section." in html
    assert "1.235" in html  # floats rounded for display
    # Outside the inlined plotly.js bundle (which mentions map-tile URLs it never loads here), no URL at all;
    # the browser test checks the requests the page really makes.
    page_only = html.split("</script>", 1)[1]
    assert not re.search(r"https?://", page_only)


def test_empty_report_says_so(tmp_path):
    html = Report().save(tmp_path / "e.html").read_text()
    assert "This report has no sections." in html


def test_save_is_atomic_and_errors_are_clear(tmp_path):
    r = Report()
    with pytest.raises(InterpError, match="does not exist"):
        r.save(tmp_path / "missing" / "r.html")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions; use a path under a file instead
            with pytest.raises(InterpError):
                r.save(tmp_path / "r.html" / "x.html")
        else:
            with pytest.raises(InterpError, match="writable"):
                r.save(ro / "r.html")
            assert list(ro.iterdir()) == []
    finally:
        os.chmod(ro, 0o700)


def test_failing_section_does_not_lose_the_report(tmp_path, random_models):
    class Boom:
        def to_json(self):
            raise RuntimeError("boom")

    report = build_report(random_models["gpt2"], "hello world", progress=False)
    assert report.sections[0].title == "Model"
    out = tmp_path / "x.html"
    report.sections[0].items.append(("figure", (Boom(), "")))
    with pytest.raises(RuntimeError):
        report.save(out)
    assert not out.exists() and list(tmp_path.iterdir()) == []  # no partial file


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "interp.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_cli_report_end_to_end(tmp_path):
    out = tmp_path / "report.html"
    res = _cli("report", "--prompt", f"mia lives in {XSS}", "--out", str(out), "--quiet", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    html = out.read_text()
    assert XSS not in html and "&lt;script&gt;" in html
    assert _parse(html).scripts_with_src == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "no-such-model-xyz"], "unknown model"),
        (["--prompt", "  "], "prompt is empty"),
        (["--out", "/no/such/folder/r.html"], "does not exist"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, message):
    res = _cli("report", *args, cwd=tmp_path)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_cli_models_lists_zoo(tmp_path):
    res = _cli("models", cwd=tmp_path)
    assert res.returncode == 0 and "stories" in res.stdout and "bb" in res.stdout


def test_saved_report_is_readable_by_others(tmp_path):
    """Reports are meant to be sent: the file follows the umask (0644 here), not mkstemp's private 0600."""
    old = os.umask(0o022)
    try:
        path = Report().save(tmp_path / "r.html")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
