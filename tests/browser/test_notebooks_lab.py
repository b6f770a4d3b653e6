"""Every notebook, run the way a person runs it: JupyterLab 4 in headless Chromium, Run > Run All Cells.

For each notebook (a cleared copy under artifacts/, so the repo's notebooks are never modified and
exports land in artifacts/): no error output, no widget that failed to display, every ``Explorer``
view drawn (a plotly graph and its controls in the DOM, its error box hidden), changing one slider or
dropdown of each view changes its figure, every plotly figure model in the page is shown (one drawn graph
each, no leaked front-end model), no console error in the page, and no request to any host but the local
server. A screenshot of each notebook is saved under artifacts/.

``probe.ipynb`` (written by make_probe.py) exercises the shared widget frame itself: a render that
raises shows the error inside the widget, the widget recovers, later cells still run, and the Export
HTML button writes a report that opens offline.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.lab import REPO, LabNotebook, LabServer, cleared_copy, open_lab

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
PROBE = Path(__file__).with_name("probe.ipynb")

# Console messages that are not errors of this project. Each entry says why it is benign.
BENIGN_CONSOLE: list[str] = []
"""Console messages that are not failures (none: anywidget's "Failed to initialize model", logged when a model's
JavaScript took over 2 s, is gone since widgets.base.Figure loads plotly's bundle after the model is up)."""


def _serious(messages: list[str]) -> list[str]:
    return [m for m in messages if not any(re.search(p, m) for p in BENIGN_CONSOLE)]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = LabServer(REPO, tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def lab_app(browser, lab):
    """One JupyterLab page for the whole module (loading the app costs tens of seconds on a busy CPU)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = open_lab(ctx, lab)
    yield page
    ctx.close()


@pytest.fixture
def lab_page(lab_app, lab):
    """The shared page; after the test the notebook is closed and its kernel shut down."""
    lab_app.console_errors.clear()
    lab_app.requests.clear()
    yield lab_app
    try:
        LabNotebook(lab_app, lab, "").close()
    finally:
        lab.shutdown_kernels()
    time.sleep(2)  # let the closed tab's widget views finish tearing down before the next test's records start


def _open_and_run(page, lab: LabServer, src: Path, timeout_s: float = 300.0) -> tuple[LabNotebook, list]:
    copy = cleared_copy(src, ARTIFACTS / src.name)
    nb = LabNotebook(page, lab, str(copy.relative_to(REPO)))
    nb.open()
    cells = nb.run_all(timeout_s=timeout_s)
    return nb, cells


def _check_clean_run(nb: LabNotebook, cells) -> None:
    errors = nb.panel.locator('[data-mime-type="application/vnd.jupyter.error"]')
    assert errors.count() == 0, f"{nb.path}: error output:\n" + "\n---\n".join(errors.all_inner_texts())[-3000:]
    not_run = [c.prompt for c in cells if not c.empty and not re.match(r"^\[\d+\]:$", c.prompt.strip())]
    assert not not_run, f"{nb.path}: cells that did not run: {not_run}"
    # ipywidgets writes this text in place of a view whose model is missing or whose JS failed
    broken = nb.panel.get_by_text(re.compile(r"Error displaying widget|model not found", re.I))
    assert broken.count() == 0, f"{nb.path}: " + " | ".join(broken.all_inner_texts())


def _wait_explorers_drawn(nb: LabNotebook, timeout_s: float = 120.0) -> int:
    """Wait until every Explorer has a drawn plotly graph; returns how many Explorers there are."""
    page = nb.page
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(
            """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .interp-explorer')].map(e => ({
                graphs: e.querySelectorAll('.js-plotly-plot').length,
                drawn: e.querySelectorAll('.js-plotly-plot .main-svg').length > 0,
                controls: e.querySelectorAll('.widget-slider, .widget-dropdown, .widget-select, .widget-text, '
                    + '.widget-toggle-buttons, .widget-checkbox, .widget-radio, .widget-textarea').length,
                error: (e.querySelector('.interp-error') || {}).innerText || '',
                errorShown: !!(e.querySelector('.interp-error') || {}).offsetParent,
            }))"""
        )
        if state and all(s["drawn"] for s in state):
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{nb.path}: widget views not drawn after {timeout_s:.0f} s: {state}")
        time.sleep(0.5)
    for i, s in enumerate(state):
        assert s["controls"] > 0, f"{nb.path}: explorer {i} shows no controls"
        assert not s["errorShown"], f"{nb.path}: explorer {i} shows an error: {s['error']}"
    return len(state)


def _wait_controls_enabled(root, timeout_s: float) -> None:
    """Explorer.run() disables the controls while render() runs; wait until they are enabled again."""
    deadline = time.monotonic() + timeout_s
    while _busy(root) and time.monotonic() < deadline:
        time.sleep(0.2)


def _busy(root) -> bool:
    """Explorer.run() shows its progress bar, disables the controls and says "computing…" while render() runs (a
    background run sets them from its thread, so any one of them may reach the page first)."""
    return root.evaluate(
        "e => [...e.querySelectorAll('.widget-progress')].some(p => getComputedStyle(p).visibility === 'visible'"
        " && p.offsetParent !== null)"
        " || [...e.querySelectorAll('.widget-html')].some(h => h.innerText.startsWith('computing'))"
    )


# a Run on a real LM (IG or ReAGent on SmolLM2 in notebook 06) takes 10-20 s alone but several times that on a 2-core
# CI machine that also runs Chromium, JupyterLab and the earlier notebooks' kernels
def _change_one_control(nb: LabNotebook, root, timeout_s: float = 300.0, kinds=("dropdown", "slider", "toggle")) -> str:
    """Change a dropdown (to another option), a slider (by clicking its track) or toggle buttons (another
    choice) of ``root`` until its figures change; if a control only takes effect on the widget's Run button,
    click that too.

    Returns a description of what changed the figure; fails if nothing did."""
    tried = []
    dropdowns = root.locator(".widget-dropdown select")
    sliders = root.locator(".widget-slider")
    toggles = root.locator(".widget-toggle-buttons")
    found = {"dropdown": [dropdowns.nth(i) for i in range(dropdowns.count())], "slider": [sliders.nth(i) for i in range(sliders.count())],
             "toggle": [toggles.nth(i) for i in range(toggles.count())]}
    candidates = [(k, c) for k in kinds for c in found[k] if c.is_visible()]  # (some controls show only for some choices)
    run_button = root.locator("button.widget-button:not(:has-text('Export HTML')):not(:has-text('Cancel'))").first
    for kind, ctl in candidates[:4]:
        _wait_controls_enabled(root, timeout_s)
        before = nb.fingerprint(root)
        if kind == "dropdown":
            values = ctl.evaluate("s => [...s.options].map(o => o.value)")
            current = ctl.input_value()
            other = next((v for v in values if v != current), None)
            if other is None:
                continue
            ctl.select_option(other)
            what = f"dropdown {current!r} -> {other!r}"
        elif kind == "toggle":
            choice = ctl.locator("button:not(.mod-active)").first
            if not choice.count():
                continue
            what = f"toggle -> {choice.inner_text().strip()!r}"
            choice.click()
        else:
            # click the track far from the handle, as a person does (noUiSlider moves the handle there)
            handle = ctl.locator(".noUi-handle").first
            now, lo, top = (float(handle.get_attribute(a) or 0) for a in ("aria-valuenow", "aria-valuemin", "aria-valuemax"))
            track = ctl.locator(".noUi-target").first
            frac = 0.15 if top > lo and (now - lo) / (top - lo) > 0.5 else 0.85
            for _ in range(3):  # the page may still be laying out (figures resizing): click until the handle moves
                box = track.bounding_box()
                track.click(position={"x": box["width"] * frac, "y": box["height"] / 2})
                moved = time.monotonic() + 5
                while float(handle.get_attribute("aria-valuenow") or 0) == now and time.monotonic() < moved:
                    time.sleep(0.2)
                if float(handle.get_attribute("aria-valuenow") or 0) != now:
                    break
            after = handle.get_attribute("aria-valuenow")
            what = f"slider at {now:g} in [{lo:g}, {top:g}] clicked at {frac:.0%} of its track (now {after})"
        for press_run in (False, True):
            if press_run:
                if not run_button.count():
                    break
                run_button.click()
                what += f", then {run_button.inner_text().strip() or 'run'!r}"
            # a recompute starts within seconds (controls disabled) or the figure changes at once; then wait it out
            started = time.monotonic()
            while time.monotonic() - started < 10 and not _busy(root) and nb.fingerprint(root) == before:
                time.sleep(0.2)
            _wait_controls_enabled(root, timeout_s)
            # the figure's update message follows the end of render(), and a busy machine may draw it seconds later
            # (a single look 0.5 s after the controls came back failed once in CI): poll before calling it unchanged
            settle = time.monotonic() + 10
            while nb.fingerprint(root) == before and time.monotonic() < settle:
                time.sleep(0.3)
            if nb.fingerprint(root) != before:
                return what
        tried.append(f"{what}; status {root.locator('.widget-html').last.inner_text()!r}")
    _screenshot(nb.page, "failed_control", root)
    raise AssertionError(f"{nb.path}: no control changed the figure (tried: {tried or 'no dropdown, slider or toggle'})")


def _check_no_leaked_figures(nb: LabNotebook, timeout_s: float = 60.0) -> dict:
    """Every plotly figure model of the notebook's widget manager has a view, and there are as many models as drawn
    graphs: a figure is one front-end model, updated in place (widgets.base.Figure), never a second one."""
    deadline = time.monotonic() + timeout_s
    counts = nb.figure_models()
    while counts["figures"] != counts["plots"] and time.monotonic() < deadline:  # graphs may still be drawing
        time.sleep(0.5)
        counts = nb.figure_models()
    assert counts["manager"], f"{nb.path}: no widget manager found in the page"
    assert counts["without_view"] == 0 and counts["figures"] == counts["plots"], f"{nb.path}: leaked figure models: {counts}"
    return counts


def _check_page(page, lab: LabServer) -> None:
    serious = _serious(page.console_errors)
    assert serious == [], f"console errors: {serious}"
    foreign = sorted({u for u in page.requests if not lab.is_local(u)})
    assert foreign == [], f"requests to other hosts: {foreign}"


def _screenshot(page, name: str, target=None) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / f"{name}.png"
    if target is not None:
        target.scroll_into_view_if_needed()
    page.screenshot(path=str(out))
    return out


def test_probe_widget_frame_in_lab(lab_page, lab):
    page = lab_page
    nb, cells = _open_and_run(page, lab, PROBE, timeout_s=180)
    _check_clean_run(nb, cells)
    # the kernel runs in the environment of these tests (the repo's .venv), not some other python
    assert nb.panel.get_by_text(f"kernel prefix: {sys.prefix}", exact=True).count() == 1
    assert _wait_explorers_drawn(nb) == 1
    probe = nb.explorers().first
    _change_one_control(nb, probe, kinds=("slider",))  # (the dropdown's other option makes render() raise)
    assert _check_no_leaked_figures(nb)["figures"] == 1

    # a render() that raises: the message appears inside the widget, nothing in the cell's error output
    _wait_controls_enabled(probe, 60)
    probe.locator(".widget-dropdown select").select_option("fail")
    err = probe.locator(".interp-error")
    err.locator("b", has_text="Error:").wait_for(timeout=60_000)
    assert "ValueError: planted failure in render()" in err.inner_text()
    assert nb.panel.locator('[data-mime-type="application/vnd.jupyter.error"]').count() == 0
    _screenshot(page, "probe_error", probe)
    # ... and the widget recovers: back to "ok", the error box hides and the figure follows the slider
    _wait_controls_enabled(probe, 60)
    probe.locator(".widget-dropdown select").select_option("ok")
    err.wait_for(state="hidden", timeout=60_000)
    _change_one_control(nb, probe, kinds=("slider",))

    # the notebook keeps working: re-run the last cell; it gets a new execution count and prints again
    k = len(nb.cells()) - 1
    cell = nb.panel.locator(".jp-Notebook .jp-CodeCell").nth(k)
    before = nb.cells()[k].prompt.strip()
    cell.locator(".jp-InputArea-prompt").click()  # select the cell, then the toolbar's run button (run and advance)
    nb.panel.locator(".jp-NotebookPanel-toolbar [data-command='notebook:run-cell-and-select-next']").click()
    deadline = time.monotonic() + 60
    while not (re.match(r"^\[\d+\]:$", nb.cells()[k].prompt.strip()) and nb.cells()[k].prompt.strip() != before):
        assert time.monotonic() < deadline, f"the cell did not run again: {nb.cells()[k]}"
        time.sleep(0.3)
    cell.locator(".jp-OutputArea-output").get_by_text("cells after the widget still run").wait_for(timeout=30_000)

    # Export HTML writes the current view as a self-contained report, next to the notebook
    out = ARTIFACTS / "probe.html"
    out.unlink(missing_ok=True)
    _wait_controls_enabled(probe, 60)
    probe.get_by_role("button", name="Export HTML").click()
    probe.get_by_text("wrote probe.html").wait_for(timeout=60_000)
    assert out.exists() and "Probe figure" in out.read_text()
    _check_page(page, lab)
    _screenshot(page, "probe", probe)


@pytest.mark.parametrize("src", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_in_lab(lab_page, lab, src):
    page = lab_page
    nb, cells = _open_and_run(page, lab, src)
    _check_clean_run(nb, cells)
    n = _wait_explorers_drawn(nb) if nb.explorers().count() else 0
    changed = []
    for i in range(n):
        view = nb.explorers().nth(i)
        view.scroll_into_view_if_needed()
        changed.append(_change_one_control(nb, view))
    if n:
        _check_no_leaked_figures(nb)
    # the outputs saved by JupyterLab carry no error either (what a user would see on reopening)
    nb.save()
    saved = nbformat.read(REPO / nb.path, as_version=4)
    assert not [o for c in saved.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    _check_page(page, lab)
    _screenshot(page, src.stem, nb.explorers().first if n else None)
    if src.stem == "07_vision_language":  # its VisualTokenExplorer: a click on a patch shows that patch's words by layer
        _check_patch_click(nb, nb.explorers().first)
    if src.stem == "00_tour":  # the tour ends by exporting one report: it must open offline, cleanly
        _check_report(page.context, ARTIFACTS / "tour_report.html", "tour_report")


def _check_patch_click(nb: LabNotebook, view, timeout_s: float = 120.0) -> None:
    """Click patch (row 1, col 2) of the 4 x 4 grid of a ``VisualTokenExplorer``: its words-by-layer table appears."""
    view.scroll_into_view_if_needed()
    _wait_controls_enabled(view, 300)
    plot = view.locator(".js-plotly-plot .nsewdrag").first  # the plot area (the image and its grid fill it)
    box = plot.bounding_box()
    plot.click(position={"x": box["width"] * 2.5 / 4, "y": box["height"] * 1.5 / 4})
    view.get_by_text(re.compile(r"patch \(row 1, col 2\) of image 0.*top words by layer")).wait_for(timeout=timeout_s * 1000)
    assert view.locator(".widget-html table tr").count() >= 2, "the clicked patch's table has no rows"
    _screenshot(nb.page, "visual_token_click", view)


def _check_report(context, path: Path, name: str) -> None:
    """Open an exported report from disk: every figure drawn, no console error, nothing fetched from anywhere."""
    assert path.exists(), f"{path} was not written"
    page = context.new_page()
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(path.as_uri(), timeout=120_000)
        n_figs = page.locator("div.figure").count()
        assert n_figs > 0
        page.wait_for_function("n => document.querySelectorAll('div.figure .main-svg').length >= n", arg=n_figs, timeout=120_000)
        assert _serious(errors) == [], errors
        assert all(u.startswith(("file://", "data:", "blob:", "about:")) for u in requests), requests
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    finally:
        page.close()
