"""Attribution front end: figures, the AttributionExplorer widget, the report section, compare()."""

from __future__ import annotations

from interp.attribution import attribute
from interp.attribution.compare import compare
from interp.attribution.planted import trigger_model
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
    prompts = ["abcqdefgh", "qabcdefgh", "abcdefqgh"]
    comp = compare(model, prompts, ["occlusion", "random"], targets=[tid] * 3, sources=[4, 1, 7], n_samples=2, progress=False)
    assert comp.column("top1_rate")["occlusion"] == 1.0 and comp.ranking()[0] == "occlusion"
    comparison_figure(comp)
    assert type(comp).load(comp.save(tmp_path / "c.safetensors")).methods == ["occlusion", "random"]
