"""The views at real-model scale on SmolLM2-135M (30 layers x 9 heads = 270 heads): readable head summaries, a KL
colour scale that one extreme row does not swamp, visible whitespace, the real default prompt, and stacked
head-activity interventions equal to one pass per intervention on a real model."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from interp.prompts import REAL_PROMPT, default_prompt

TEXTS = ["The cat sat on the mat.\n\tIt was warm.", "def add(x, y):\n    return x + y\n"]


def test_default_prompt_is_the_real_one(smollm2):
    """The real prompt, not the stories one, and SmolLM2 answers it (" Berlin" is its top next token)."""
    from interp.predict import predict

    assert default_prompt(smollm2) == REAL_PROMPT
    assert predict(smollm2, REAL_PROMPT).next_tokens[0] == " Berlin"


def test_extreme_section_counts_heads_instead_of_listing_them(smollm2):
    """Most of the 270 heads sink, yet the section names at most ~30 heads in all (two top-10 columns, captions)."""
    from interp.extreme.scan import scan
    from interp.report import Report
    from interp.report.sections.extreme import add_to_report
    from interp.viz.extreme import summary_rows

    r = scan(smollm2, TEXTS, progress=False)
    assert len(r.sink_heads) > 100  # Llama-family sinks: the case the summary has to handle
    rows = dict((k, v) for k, v in summary_rows(r))
    assert rows["sink heads"].startswith(f"{len(r.sink_heads)} of 270") and len(rows["sink heads"]) < 200
    assert "none in L0" in rows["sink heads"]  # the first layers do not sink (Gu et al.; the trial found L0-L2)
    report = Report("t")
    add_to_report(report, smollm2, REAL_PROMPT, texts=TEXTS)
    tables = [item[1] for item in report.sections[0].items if item[0] == "table"]
    text = " ".join(" ".join(map(str, row)) for _, rows_, _ in tables for row in rows_)
    names = re.findall(r"L\d+H\d+", text)
    assert 10 <= len(names) <= 30, len(names)  # before: every sink and drain head, ~400 names
    assert max(len(v) for _, rows_, _ in tables for row in rows_ for v in row) < 200


def test_kl_colour_scale_is_clipped_and_says_so(smollm2):
    """The embedding row's KL (tens to hundreds of nats) is above the colour range; the rest keeps its contrast."""
    from interp.lens.logit import logit_lens
    from interp.viz.lens import CLIP_QUANTILE, lens_heatmap

    res = logit_lens(smollm2, REAL_PROMPT)
    kl = res.kl.float().numpy()
    fig = lens_heatmap(res, "kl")
    hm = fig.data[0]
    assert kl[0].max() > 2 * np.quantile(kl, CLIP_QUANTILE)  # the extreme row is there ...
    assert hm.zmax == pytest.approx(float(np.quantile(kl, CLIP_QUANTILE)))  # ... and the scale ends below it
    assert "clipped" in hm.colorbar.title.text
    assert np.asarray(hm.z).max() == pytest.approx(kl.max())  # values are not altered (hover shows them)


def test_whitespace_tokens_are_visible(smollm2):
    """SmolLM2 has single newline, tab and space tokens; every lens label shows a mark for them, never a blank."""
    from interp.lens.logit import logit_lens
    from interp.viz.lens import lens_heatmap

    res = logit_lens(smollm2, "x = 1\n\tdef  f")
    assert {"\n", "\t"} <= set(res.tokens)
    fig = lens_heatmap(res, "final_prob")
    xs = list(fig.data[0].x)
    assert any("↵" in x for x in xs) and any("⇥" in x for x in xs)
    assert all(x.split(": ", 1)[1].strip() for x in xs)
    assert all(t.strip() for row in fig.data[0].text for t in row)


def test_stacked_head_activity_equals_one_pass_each_on_smollm2(smollm2):
    """Two heads, both interventions, stacked in one pass vs one pass each: equal within 1e-5 nats (float32 rounding
    of a 30-layer forward at another batch size; the changes themselves are ~1e-3 to 1e-1 nats)."""
    from interp.extreme.activity import _domain_rows, _Run, head_activity

    text = ["The capital of France is Paris, and the capital of Germany is Berlin."]
    heads = [(1, 5), (3, 6)]
    act = head_activity(smollm2, {"d": text}, heads=heads, progress=False)
    rows, masks = _domain_rows(smollm2, text, None)
    run = _Run(smollm2, rows, masks, 16)

    with torch.no_grad():
        clean = run.loss([])
        for layer, head in heads:
            ref_z = run.loss([(f"blocks.{layer}.attn.hook_z", lambda z, q, head=head: _zero(z, q, head))]) - clean
            ref_b = run.loss([(f"blocks.{layer}.attn.hook_pattern", lambda p, q, head=head: _first(p, q, head))]) - clean
            assert float(act.dloss_zero[0, layer, head]) == pytest.approx(ref_z, abs=1e-5)
            assert float(act.dloss_bos[0, layer, head]) == pytest.approx(ref_b, abs=1e-5)
    assert act.dloss_zero[0, 1, 5].abs() > 1e-3  # L1H5 matters (the trial: +0.24 nats on prose)
    assert int(act.measured.sum()) == 2


def _zero(z, q, head):
    z = z.clone()
    z[:, :, head] = z[:, :, head] * (~q)[..., None].to(z.dtype)
    return z


def _first(p, q, head):
    p = p.clone()
    row = torch.zeros_like(p[:, head])
    row[..., 0] = 1.0
    p[:, head] = torch.where(q[:, :, None], row, p[:, head])
    return p
