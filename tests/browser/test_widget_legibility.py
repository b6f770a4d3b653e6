"""The explorers at real scale, measured in JupyterLab's DOM: SmolLM2-135M (30 layers, 9 heads) on a 51-token prompt.

One notebook shows the lens, sink and attribution explorers on the real model (the browser tier has it: notebook 06
uses it too). Once every view is drawn, each is measured with ``tests.browser.legibility.measure``: every visible text
(figure labels, cell text, controls) at least ``MIN_FONT_PX``, no two labels of a figure overlapping, no label cut
by its figure's edge, no legend or colour bar over a plot area, the view's height within a bound, and each lens
column (input token) labelled. The page may log no console error at all (none is excused here).
"""

from __future__ import annotations

import json
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.browser.legibility import MIN_FONT_PX, measure, problems
from tests.browser.test_notebooks_lab import (  # noqa: F401 (fixtures: one JupyterLab for this module)
    _check_clean_run,
    _open_and_run,
    _screenshot,
    _wait_controls_enabled,
    _wait_explorers_drawn,
    lab,
    lab_app,
    lab_page,
)

pytestmark = pytest.mark.browser

PROMPT = ("The Eiffel Tower, finished in 1889 for the World's Fair, stands beside the river Seine in Paris, the capital of "
          "France. Each year millions of visitors climb its iron stairs to look out over the city, and the")
"""51 SmolLM2 tokens (the newcomer's trial used 20-60 token prompts)."""

MAX_HEIGHT = {"Lens explorer": 1200, "Sink explorer": 2800, "Token attribution": 1200, "Sink explorer, domains compared": 3350}
"""Bounds on each view's height (CSS px) in a 1280 x 900 window: tall figures scroll inside their box instead of
growing the page (the sink explorer was 4,500 px tall)."""

CELLS = [
    "import torch\n\nfrom interp import load_model\nfrom widgets.attribution import AttributionExplorer\n"
    "from widgets.extreme import SinkExplorer\nfrom widgets.lens import LensExplorer\n\n"
    f"torch.manual_seed(0)\nmodel = load_model('smollm2-135m', device='cpu')\nPROMPT = {PROMPT!r}\n"
    "print(len(model.to_str_tokens(PROMPT)), 'tokens')",
    "LensExplorer(model, PROMPT)",
    "sink = SinkExplorer(model, PROMPT, domains='code: def add(a, b): return a + b\\nprose: The cat sat on the mat by the door.')\n"
    "sink.n_ablate.value = 9  # Compare domains ablates the 9 heads whose sink score differs most\nsink",
    "AttributionExplorer(model, PROMPT)",
]


def test_explorers_legible_at_smollm2_scale(lab_page, lab, tmp_path):  # noqa: F811 (the imported fixtures)
    page = lab_page
    src = tmp_path / "widget_legibility.ipynb"
    nb_doc = new_notebook(cells=[new_code_cell(c) for c in CELLS])
    nbformat.write(nb_doc, src)
    nb, cells = _open_and_run(page, lab, src, timeout_s=600)
    _check_clean_run(nb, cells)
    assert nb.panel.get_by_text("51 tokens", exact=True).count() == 1
    assert _wait_explorers_drawn(nb, timeout_s=300) == 3
    found, report = {}, {}
    for i in range(3):
        view = nb.explorers().nth(i)
        _wait_controls_enabled(view, 300)
        title = view.locator(".widget-html b").first.inner_text().strip()
        m = measure(view)
        found[title] = problems(m, MAX_HEIGHT[title])
        report[title] = {k: m[k] for k in ("height", "texts", "ticks")} | {"problems": found[title]}
        assert m["texts"] > 50, f"{title}: only {m['texts']} visible texts measured"
        if title == "Lens explorer":  # one label per input token under the grid (plotly drops category labels that collide)
            columns = [t["ticks"].get("xy x", 0) for t in m["ticks"] if t["title"].startswith("logit lens")]
            if columns != [51]:
                found[title].append(f"lens grid column labels drawn: {columns} (51 tokens)")
        _screenshot(page, f"legibility_{i}", view)
    # the figures follow their controls after the page has loaded them: the lens colour goes to entropy
    lens = nb.explorers().nth(0)
    before = nb.fingerprint(lens)
    lens.locator(".widget-dropdown select").nth(1).select_option("entropy")
    deadline = time.monotonic() + 300
    while nb.fingerprint(lens) == before or "entropy" not in lens.locator(".gtitle").first.text_content():
        assert time.monotonic() < deadline, "the lens grid did not follow its colour control"
        time.sleep(0.5)
    # the sink explorer's domain comparison adds its bar chart (a legend, two panels): legible too
    sink = nb.explorers().nth(1)
    _wait_controls_enabled(sink, 300)
    sink.get_by_role("button", name="Compare domains").click()
    sink.locator(".gtitle", has_text="Active/dormant heads").wait_for(timeout=300_000)
    _wait_controls_enabled(sink, 300)
    title = "Sink explorer, domains compared"
    m = measure(sink)
    found[title] = problems(m, MAX_HEIGHT[title])
    report[title] = {k: m[k] for k in ("height", "texts", "ticks")} | {"problems": found[title]}
    _screenshot(page, "legibility_domains", sink.locator(".gtitle", has_text="Active/dormant heads"))
    (tmp_path / "legibility.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    print("console errors:", json.dumps(page.console_errors))
    assert set(found) == set(MAX_HEIGHT), sorted(found)
    bad = {k: v for k, v in found.items() if v}
    assert not bad, f"illegible at SmolLM2 scale (min font {MIN_FONT_PX:g} px):\n" + "\n".join(
        f"{k}: {len(v)} problems, e.g.\n  " + "\n  ".join(v[:12]) for k, v in bad.items())
    assert page.console_errors == [], f"console errors: {page.console_errors}"
