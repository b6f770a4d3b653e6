"""Attribution front end: figures, the AttributionExplorer widget, the report section, compare()."""

from __future__ import annotations

import pytest

from interp.attribution import attribute
from interp.attribution.compare import compare
from interp.attribution.planted import trigger_model
from interp.attribution.settings import RandomSettings
from interp.attribution.truth import TruthPrompt
from interp.errors import InterpError
from interp.report import Report


def test_figures_widget_report_and_compare(tmp_path):
    from interp.viz.attribution import comparison_figure, matrix_figure, token_figure
    from widgets.attribution import AttributionExplorer

    model, tid = trigger_model()
    a = attribute(model, "abcqdefgh", method="occlusion", generate=2).with_marks(top_positive=[4], top_negative=[1])
    fig = token_figure(a)
    assert any("score" in h for row in fig.data[0].hovertext for h in row if h)  # hover carries the score
    assert len(fig.layout.shapes) == 2  # both marks outlined
    m = matrix_figure(a)
    assert len(m.data[0].z) == 2 and m.data[0].z[0][-1] is None  # the first target cannot see the last source

    w = AttributionExplorer(model, "abcqdefgh", method="occlusion")
    assert w.error.layout.display == "none" and w.result.target_ids == [tid]
    w.method.value, w.generate.value = "integrated_gradients", 2
    assert w.run() and w.result.scores.shape[0] == 2 and "completeness" in w.info.value
    w.method.value = "reagent"
    w.max_steps.value = 20
    assert w.run()
    w.prompt.value = ""
    assert not w.run() and "empty" in w.error.value  # bad input shown inside the widget
    r = Report("t")
    w.prompt.value = "abcqdefgh"
    w.run()
    w.add_to_report(r)
    from interp.report.sections.attribution import add_to_report

    add_to_report(r, model, "abcqdefgh")
    html = r.to_html()
    assert "Token attribution: reagent" in html and "faithfulness" in html

    # the planted trigger is the ground truth: occlusion must rank first, random cannot beat it
    prompts = [TruthPrompt(model.to_tokens(p)[0], tid, (src,), "planted", p)
               for p, src in (("abcqdefgh", 4), ("qabcdefgh", 1), ("abcdefqgh", 7))]
    comp = compare(model, prompts, {"occlusion": {}, "random": RandomSettings(seed=3)}, n_samples=2, progress=False)
    assert comp.column("top1_rate")["occlusion"] == 1.0 and comp.ranking()[0] == "occlusion"
    with pytest.raises(InterpError, match="carry their targets"):
        compare(model, prompts, ["random"], targets=[tid] * 3, progress=False)
    with pytest.raises(InterpError, match="at least one method"):
        compare(model, prompts, {}, progress=False)
    comparison_figure(comp)
    assert type(comp).load(comp.save(tmp_path / "c.safetensors")).methods == ["occlusion", "random"]


def test_reagent_defaults_are_the_real_vocabulary_settings():
    """``attribute(..., method="reagent")`` defaults to REAGENT_REAL with BOS fixed (one source of truth)."""
    import inspect

    from interp.attribution.reagent import REAGENT_REAL, REAGENT_REFERENCE, ReagentConfig, reagent_scores
    from interp.attribution.settings import ReagentSettings

    params = ReagentSettings.defaults()
    for k, v in REAGENT_REAL.items():
        assert params[k] == (None if k == "keep_top_n" else v), k  # None: 8, or fewer on a short prefix
    assert params["fix_bos"] is True
    low = ReagentConfig()
    assert {k: getattr(low, k) for k in REAGENT_REFERENCE} == REAGENT_REFERENCE  # the algorithm keeps the reference's
    assert len(inspect.signature(reagent_scores).parameters) <= 9  # its settings live in ReagentConfig


def test_reagent_presets_fill_the_numbers_and_edits_show_custom():
    """The ReAGent preset sets probes / min steps / max steps (fast = REAGENT_FAST, stable = the defaults); a toy
    model starts on stable, an edit that matches no preset shows "custom", and the run uses the numbers shown."""
    from interp.attribution import REAGENT_FAST
    from interp.attribution.settings import ReagentSettings
    from widgets.attribution import AttributionExplorer

    model, tid = trigger_model()
    w = AttributionExplorer(model, "abcqdefgh", method="reagent", run=False)
    keys = ("num_probes", "min_steps", "max_steps")  # what a preset sets in the view
    defaults = {k: ReagentSettings()[k] for k in keys}
    fast = {k: REAGENT_FAST[k] for k in keys}
    shown = lambda: {"num_probes": w.probes.value, "min_steps": w.min_steps.value, "max_steps": w.max_steps.value}  # noqa: E731
    assert w.preset.value == "stable" and shown() == defaults
    w.preset.value = "fast"
    assert shown() == fast and w.preset.value == "fast"
    assert {k: w.options()[k] for k in keys} == fast
    assert w.run() and max(w.result.info["steps"]) <= REAGENT_FAST["max_steps"] and w.result.target_ids == [tid]
    w.probes.value = 3
    assert w.preset.value == "custom" and w.options()["num_probes"] == 3
    w.probes.value = REAGENT_FAST["num_probes"]  # back to a preset's numbers: its name again
    assert w.preset.value == "fast"
    w.preset.value = "stable"
    assert shown() == defaults


def test_ig_points_box_sends_max_points_and_reagent_keeps_its_own_max_steps():
    """The "IG max points" box is sent as the IG methods' ``max_points`` (their one, shared default fills it); ReAGent's
    "max steps" box is its update steps and never reaches an IG method; the per-token reduction box shows only for
    methods that have one and starts at the method's own default."""
    from interp.attribution.ig import MAX_POINTS
    from interp.attribution.registry import SETTINGS
    from widgets.attribution import AttributionExplorer

    model, _ = trigger_model()
    w = AttributionExplorer(model, "abcqdefgh", method="integrated_gradients", run=False)
    w.max_steps.value = 7  # ReAGent's box
    for m in ("attention_ig", "integrated_gradients", "attention_ig"):
        w.method.value = m
        assert SETTINGS[m].defaults()["max_points"] == MAX_POINTS
        assert w.max_points.value == MAX_POINTS and w.options()["max_points"] == MAX_POINTS
        assert "max_steps" not in w.options()
    w.max_points.value = 64
    assert w.options()["max_points"] == 64
    w.method.value = "reagent"
    assert w.options()["max_steps"] == 7 and "max_points" not in w.options() and "reduction" not in w.options()
    assert w.reduction.layout.display == "none"
    w.method.value = "gradient_norm"
    assert w.reduction.layout.display == "" and w.options()["reduction"] == "l2"
    w.method.value = "integrated_gradients"
    w.reduction.value = "abs_sum"
    w.max_points.value = 60
    assert w.run() and w.result.reduction == "abs_sum" and w.result.options["max_points"] == 60
    assert "sum of |.|" in w.tokens_fig.layout.title.text


def test_run_button_works_in_the_background_and_cancel_keeps_the_previous_result():
    """Run starts ReAGent / IG in a thread with Cancel shown; Cancel stops it at its next progress call and the
    view keeps the previous result; the controls come back either way."""
    import threading

    from widgets.attribution import AttributionExplorer

    model, tid = trigger_model()
    w = AttributionExplorer(model, "abcqdefgh", method="occlusion")
    before = w.result
    for method in ("reagent", "integrated_gradients", "attention_ig"):
        w.method.value = method
        started, release = threading.Event(), threading.Event()
        real = w.progress

        def gated(i, n, real=real, started=started, release=release):  # hold the first step until Cancel
            started.set()
            release.wait(30)
            real(i, n)

        w.progress = gated
        w.go_button.click()
        assert started.wait(30) and w.busy and w.cancel_button.layout.display == ""
        assert w.controls[0].disabled and not w.run()  # a second run is refused while one is going
        w.cancel_button.click()
        release.set()
        w.wait(30)
        assert not w.busy and w.result is before and "cancelled" in w.status.value
        assert w.cancel_button.layout.display == "none" and not w.controls[0].disabled
        w.progress = real
    w.method.value = "integrated_gradients"
    w.go_button.click()
    w.wait(60)
    assert w.result is not before and w.result.method == "integrated_gradients" and w.status.value == ""
