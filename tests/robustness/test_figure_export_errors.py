"""Static figure export without what it needs, and bad ``interp figure`` input: one clear InterpError (exit 2), before
any model is loaded, and no file written. None of these needs a working Chromium."""

from __future__ import annotations

import sys

import plotly.graph_objects as go
import pytest

import interp.viz.export as export
from interp.cli import main
from interp.errors import InterpError


@pytest.fixture
def no_chromium(monkeypatch, tmp_path):
    """A machine with no Chromium anywhere: no variables, no Debian binary, an empty PATH."""
    monkeypatch.delenv("INTERP_CHROMIUM", raising=False)
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(export, "_CANDIDATES", (str(tmp_path / "no-chromium"),))
    monkeypatch.setenv("PATH", str(tmp_path))


@pytest.fixture
def fake_chromium(monkeypatch):
    """An executable that stands for the browser, so the checks before rendering pass."""
    monkeypatch.setenv("INTERP_CHROMIUM", sys.executable)


def test_no_chromium_is_a_clear_error(no_chromium, tmp_path):
    with pytest.raises(InterpError, match="needs a Chromium and none was found: install Debian's chromium"):
        export.chromium_path()
    with pytest.raises(InterpError, match="needs a Chromium"):
        export.save_figure(go.Figure(), tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


def test_cli_without_chromium_exits_2_before_loading_a_model(no_chromium, tmp_path, capsys, monkeypatch):
    import interp.models

    monkeypatch.setattr(interp.models, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    assert main(["figure", "lens", "--out", str(tmp_path / "f.png")]) == 2
    assert "needs a Chromium" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_chromium_variable_that_is_not_a_program(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERP_CHROMIUM", str(tmp_path / "nothing"))
    with pytest.raises(InterpError, match=r"\$INTERP_CHROMIUM .* not an executable file"):
        export.chromium_path()


def test_a_browser_that_fails_is_an_interp_error(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERP_CHROMIUM", "/bin/false")  # starts and exits at once
    with pytest.raises(InterpError, match="could not be rendered with /bin/false"):
        export.save_figure(go.Figure(), tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []


def test_no_kaleido_is_a_clear_error(fake_chromium, monkeypatch):
    monkeypatch.setitem(sys.modules, "kaleido", None)  # import kaleido raises ImportError
    with pytest.raises(InterpError, match="needs kaleido"):
        export.figure_bytes(go.Figure(), "png")


@pytest.mark.parametrize(("call", "message"), [
    (lambda p: export.save_figure(go.Figure(), p / "f.jpg"), "cannot export a figure as 'jpg'"),
    (lambda p: export.save_figure(go.Figure(), p / "f"), "has no suffix: name the file .png or .svg"),
    (lambda p: export.figure_bytes(go.Figure(), "png", width=-5), "width must be a positive number"),
    (lambda p: export.figure_bytes(go.Figure(), "png", scale=0), "scale must be a positive number"),
    (lambda p: export.save_figure(go.Figure(), p / "missing" / "f.png"), "does not exist"),
    (lambda p: export.save_figures([(go.Figure(), p / "a.png"), (go.Figure(), p / "missing" / "b.png")]), "does not exist"),
    (lambda p: export.save_figures([]), "no figures to save"),
])
def test_bad_export_arguments(fake_chromium, tmp_path, call, message, monkeypatch):
    monkeypatch.setattr(export, "_render", lambda jobs, timeout: [b"\x89PNG\r\n\x1a\n"] * len(jobs))  # no browser here
    with pytest.raises(InterpError, match=message):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the figures before the bad one


@pytest.mark.parametrize(("args", "message"), [
    (["lens", "--out", "{tmp}/f.jpg"], "ending in .png or .svg"),
    (["lens", "--out", "{tmp}"], "is a folder"),
    (["lens", "--out", "{tmp}/no/f.png"], "does not exist"),
    (["compare", "--out", "{tmp}/f.png"], "needs a second model: --model-b"),
    (["lens", "--from", "{tmp}/x.json", "--out", "{tmp}/f.png"], "--from is for 'interp figure json'"),
    (["json", "--out", "{tmp}/f.png"], "needs --from"),
    (["json", "--from", "{tmp}/none.json", "--out", "{tmp}/f.png"], "no such file"),
    (["json", "--from", "{tmp}/bad.json", "--out", "{tmp}/f.png"], "is not a plotly figure in JSON"),
    (["lens", "--prompt", "  ", "--out", "{tmp}/f.png"], "--prompt is empty"),
    (["lens", "--threads", "0", "--out", "{tmp}/f.png"], "--threads"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(fake_chromium, tmp_path, capsys, args, message, monkeypatch):
    import interp.models

    monkeypatch.setattr(interp.models, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    (tmp_path / "bad.json").write_text("{not json")
    before = set(tmp_path.iterdir())
    assert main(["figure", *[a.format(tmp=tmp_path) for a in args]]) == 2
    assert message in capsys.readouterr().err
    assert set(tmp_path.iterdir()) == before
