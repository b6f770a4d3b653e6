"""Progress inside report sections: the long sections tell a callback each step, the report's HTML is the same with
and without it, the nested bar follows the callback, and Ctrl-C still stops the report."""

from __future__ import annotations

import io
import re

import pytest
from tqdm import tqdm

import interp.report.build as build
from interp.errors import InterpError
from interp.report import Report, build_report
from interp.report.sections import attribution, extreme, lens

PROMPT = "one day mia found a key in the garden . then mia"
LONG = {"lens": (lens.add_to_report, {}), "extreme": (extreme.add_to_report, {}),
        "attribution": (attribution.add_to_report, {"methods": {"occlusion": {}, "integrated_gradients": {"max_points": 4}}})}


def _html(report: Report) -> str:
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "DATE", report.to_html())  # the generation minute is the only clock


@pytest.mark.parametrize("name", list(LONG))
def test_sections_report_each_step_and_write_the_same_html(stories, one_thread_module, name):
    add, options = LONG[name]
    calls = []
    with_hook, without = Report("t"), Report("t")
    add(with_hook, stories, PROMPT, **options, progress=lambda what, done, total: calls.append((what, done, total)))
    add(without, stories, PROMPT, **options)
    assert _html(with_hook) == _html(without)
    assert len(calls) >= 3 and calls[0][1] == 0 and calls[-1][1] == calls[-1][2]
    assert all(what and 0 <= done <= total for what, done, total in calls)
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)  # steps only move forward
    assert len({c[2] for c in calls}) == 1  # one total per section


def test_build_report_passes_the_hook_only_to_sections_that_take_it(stories, monkeypatch):
    seen = {}

    def takes(report, model, prompt, *, k: int = 1, progress=None):
        seen["takes"] = progress
        if progress is not None:
            progress("step", 0, 2)
            progress("done", 2, 2)
        report.add_text("takes", f"k={k}")

    def plain(report, model, prompt, *, k: int = 1):
        seen["plain"] = "called"
        report.add_text("plain", "ok")

    monkeypatch.setattr(build, "SECTIONS", [("Takes", takes), ("Plain", plain)])
    on = build_report(stories, PROMPT, progress=True, k=3)
    assert callable(seen["takes"]) and seen["plain"] == "called"
    off = build_report(stories, PROMPT, progress=False, k=3)
    assert seen["takes"] is None and _html(on) == _html(off)
    with pytest.raises(InterpError, match="has no option progres") as e:  # the hook is not a user option
        build.check_section_options({"progres": 1})
    assert "progress" not in str(e.value).split("options are")[1]
    assert build.takes_progress(takes) and not build.takes_progress(plain)


def test_the_nested_bar_follows_the_callback():
    bar = tqdm(total=1, file=io.StringIO(), disable=False)
    update = build._inner_progress(bar, "Token attribution")
    update("occlusion", 1, 4)
    assert (bar.n, bar.total, bar.desc) == (1, 4, "Token attribution: occlusion")
    update("done", 9, 4)  # clamped to the total
    assert (bar.n, bar.total) == (4, 4)
    bar.close()


def test_ctrl_c_inside_a_section_stops_the_report(stories, monkeypatch):
    def interrupted(report, model, prompt, *, progress=None):
        progress("first step", 0, 3)
        raise KeyboardInterrupt

    monkeypatch.setattr(build, "SECTIONS", [("Stops", interrupted)])
    with pytest.raises(KeyboardInterrupt):
        build_report(stories, PROMPT, progress=True)
