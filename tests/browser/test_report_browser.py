"""The exported report opens in headless Chromium: figures render, no console error, no network, no XSS."""

from __future__ import annotations

from interp.report import build_report
from tests.browser.conftest import ARTIFACTS

XSS = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=1</script>"


def test_report_renders_offline(page, stories, tmp_path):
    report = build_report(stories, f"mia lives in paris . {XSS}", progress=False)
    path = report.save(tmp_path / "report.html")
    # Generous timeouts: parsing the inlined 4.8 MB plotly.js on a loaded 2-core machine can take a while.
    page.set_default_timeout(180_000)
    page.goto(path.as_uri(), wait_until="load")
    n_figs = page.locator("div.figure").count()
    if n_figs:
        page.wait_for_selector("div.figure .main-svg")
        assert page.locator("div.figure .main-svg").count() >= n_figs
    assert page.locator("section").count() == len(report.sections)
    assert page.evaluate("window.__pwned") is None  # nothing from the prompt ran
    assert page.console_errors == []
    assert all(u.startswith(("file://", "data:", "blob:", "about:")) for u in page.requests), page.requests
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
