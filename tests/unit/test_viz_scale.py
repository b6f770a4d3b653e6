"""Views that stay readable at real-model scale, on plain inputs: head-set summaries, visible whitespace, escaping,
the clipped KL colour scale and the model-dependent default prompt (the real-model versions are in tests/real/)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.viz.common import escape, label, visible
from interp.viz.heads import head_set_text, layer_ranges, top_heads


def test_layer_ranges_and_head_sets():
    assert layer_ranges([0, 1, 2, 10, 11, 5]) == "L0–L2, L5, L10–L11" and layer_ranges([]) == "none"
    assert head_set_text([(0, 1), (2, 0)], 3, 4) == "2 of 12: L0H1, L2H0"
    many = [(a, b) for a in range(3, 30) for b in range(9) if not (a in (10, 11) or (a == 4 and b == 0))]
    text = head_set_text(many, 30, 9)
    assert text == f"{len(many)} of 270 (83%); none in L0–L2, L10–L11; all 9 in L3, L5–L9, L12–L29"
    assert head_set_text([], 30, 9) == "none"


def test_top_heads_order_nan_and_mask():
    v = torch.tensor([[0.5, float("nan")], [0.9, 0.5]])
    assert [r[:2] for r in top_heads(v, 3)] == [[1, "L1H0"], [2, "L0H0"], [3, "L1H1"]]  # tie 0.5: lower (layer, head) first
    assert top_heads(v, 9)[0][2] == pytest.approx(0.9) and len(top_heads(v, 9)) == 3  # NaN skipped
    assert top_heads(v, 1, largest=False) == [[1, "L0H0", 0.5]]
    assert top_heads(v, 5, among=torch.tensor([[False, True], [False, True]])) == [[1, "L1H1", 0.5]]


def test_whitespace_is_visible_and_text_escaped():
    assert [visible(t) for t in [" ", "\n", "\t", "  ", "\xa0", "", "\u200b"]] == ["␣", "↵", "⇥", "␣␣", "⍽", "∅", "\\u200b"]
    assert visible(" Paris") == " Paris" and visible("a\nb") == "a↵b"
    assert label('<b>"x"</b>') == "&lt;b&gt;&#34;x&#34;&lt;/b&gt;"  # numeric quote entities: plotly shows &quot; literally
    assert "&quot;" not in escape("'\"")


def test_kl_colour_clipped_only_when_one_row_swamps_it():
    from interp.viz.lens import CLIP_QUANTILE, _colour

    calm = np.full((13, 5), 3.0)  # a 12-layer model: one row is 7.7% of the cells, above the 90th percentile
    calm[2] = 5.0
    assert "zmax" not in _colour("kl", calm)[1]
    wild = calm.copy()
    wild[0] = 150.0  # an embedding row at 150 nats
    _, opts = _colour("kl", wild)
    assert opts["zmax"] == np.quantile(wild, CLIP_QUANTILE) < 150 and "clipped" in opts["colorbar"]["title"]


def test_default_prompt_by_model(stories, random_models):
    from interp.prompts import REAL_PROMPT, TOY_PROMPT, default_prompt

    assert default_prompt(stories) == TOY_PROMPT and default_prompt(random_models["llama"]) == TOY_PROMPT
    assert REAL_PROMPT != TOY_PROMPT
