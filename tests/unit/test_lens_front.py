"""Lens figures, the LensExplorer widget and the report section (random model; stories for the report)."""

from __future__ import annotations

import pytest
import torch

from interp.lens import LatentIndex, TunedLens, latent_lens, logit_lens
from interp.report import Report
from interp.testing import random_model


@pytest.fixture(scope="module")
def model():
    # (random_model seeds its weights: seed=0)
    return random_model("gpt2", n_layers=3)


@pytest.fixture(scope="module")
def index(model):
    return LatentIndex.build(model, ["hello there world, a b c", "abc abc abc abc <b>"], progress=False)


def test_figures(model, index):
    from interp.viz.lens import kl_by_layer, latent_heatmap, lens_heatmap, neighbour_table, target_line, topk_table

    r = logit_lens(model, "a <b>c</b> d", target="c")
    for stat in ("final_prob", "entropy", "kl", "target_rank", "target_prob"):
        fig = lens_heatmap(r, stat, stride=2)
        heat = fig.data[0]
        assert list(heat.y) == ["0_pre", "2_pre", "final_post"]  # stride 2 keeps the last row
        assert heat.text[-1][0] == r.top_tokens[-1][0][0] or "&" in heat.text[-1][0]
        assert "<b>" not in "".join(heat.x)  # token strings are escaped
    rank = lens_heatmap(r, "target_rank").data[0]
    assert float(max(map(max, rank.z))) <= torch.log10(r.target_rank.float()).max() + 1e-6  # log-scale colour
    assert len(target_line(r).data) == 1 and len(kl_by_layer({"a": [1, 2, 3, 0], "b": [0, 1, 1, 0]}, r.layers).data) == 2
    ll = latent_lens(model, "hello", index, k=3)
    grid = latent_heatmap(ll).data[0]
    assert list(grid.y) == ll.labels and grid.text[0][1] == ll.neighbours[0][1][0]
    table = neighbour_table(ll, 1, 2).data[0]
    assert list(table.cells.values[1]) == ll.neighbours[1][2] and len(table.cells.values[4]) == 3
    assert len(neighbour_table(index.search(torch.randn(2, model.cfg.d_model), 4), 1).data[0].cells.values[0]) == 4
    assert topk_table(r, 0, 1).data[0].cells.values[1][0] == r.top_tokens[0][1][0]


def test_lens_explorer(model, index, tmp_path):
    from widgets.lens import LensExplorer

    w = LensExplorer(model, "hello world", index=index, tuned=TunedLens.for_model(model))
    assert w.error.layout.display == "none" and w.fig.data[0].y[-1] == "final_post"
    html = w.select(1, 2)
    assert "1_pre" in html and "LatentLens neighbours" in html and w.result.top_tokens[1][2][0] in html
    w.lens.value = "latent"  # observers re-render
    assert w.latent is not None and w.fig.layout.yaxis.title.text == "query layer"
    w.lens.value = "tuned"
    w.stat.value = "target_rank"  # no target yet: an error shown in the widget, not raised
    assert w.error.layout.display == "block" and "target" in w.error.value
    w.target.value = "o"
    assert w.run() and w.result.lens == "tuned" and w.result.target == "o"
    w.stride.value = 2
    assert list(w.fig.data[0].y) == ["0_pre", "2_pre", "final_post"]
    assert w.export(tmp_path / "lens.html").stat().st_size > 10_000
    bare = LensExplorer(model, "hi")  # no tuned lens and no index for a random model: errors inside the widget
    bare.lens.value = "tuned"
    assert "no tuned lens" in bare.error.value
    bare.lens.value = "latent"
    assert "no LatentLens index" in bare.error.value


def test_report_section_random_model(model):
    from interp.report.sections.lens import add_to_report

    report = Report("t")
    add_to_report(report, model, "hello world")
    (section,) = report.sections
    kinds = [kind for kind, _ in section.items]
    assert kinds.count("figure") == 3 and kinds.count("text") == 2  # no tuned lens, no index: said in text
    assert "<html" in report.to_html().lower()


def test_report_section_stories():
    from interp.models import load_model
    from interp.report.sections.lens import add_to_report

    stories = load_model("stories", device="cpu")
    report = Report("t")
    add_to_report(report, stories, "one day mia found a key in the garden . then mia took the")
    kinds = [kind for kind, _ in report.sections[0].items]
    assert kinds.count("figure") == 6 and kinds.count("table") == 1 and "text" not in kinds  # tuned lens + LatentLens present
