"""Embedding IG on SmolLM2-135M equals captum's ``LayerIntegratedGradients`` for the same objective, baseline, points.

Objective: the target's probability (``attribute``'s default for IG); baseline: BOS kept, every other token
embedding zero ("auto" on a rotary model); points: Gauss-Legendre with 32 nodes on both sides (captum's
``method="gausslegendre"``). Per-token signed sums and L2 norms agree to within 5e-4 of the largest score (measured:
1.6e-5 and 2.5e-5 on the first prompt, 8.5e-5 and 7.2e-5 on the second; the project interpolates in float64 and
sums the steps in float64, captum does both in float32), and the top 3 positions are the same. The whole-answer
contrast (``Answer``, GrAInS's objective) agrees the same way on each of its two sequences (measured 2.2e-5 and 9.1e-5).
"""

from __future__ import annotations

import pytest
import torch

from interp.attribution import attribute
from interp.attribution.captum_ref import captum_layer_ig
from interp.attribution.reduction import reduce_tokens

pytestmark = pytest.mark.real

CASES = [("The capital of France is", " Paris"), ("Anna gave the ball to Tom. Then Tom gave the ball to", " Anna")]
POINTS = 32


@pytest.mark.parametrize("prompt, target", CASES)
def test_ig_equals_captum_layer_ig_on_smollm2(smollm2, one_thread_module, prompt, target):
    (tid,) = smollm2.tokenizer(target, add_special_tokens=False).input_ids
    per_dim = captum_layer_ig(smollm2, smollm2.to_tokens(prompt)[0], tid, n_steps=POINTS, baseline="auto", reduction=None)
    for reduction in ("sum", "l2"):
        ours = attribute(smollm2, prompt, target, method="integrated_gradients", rule="gausslegendre",
                         max_points=POINTS, reduction=reduction)
        theirs = reduce_tokens(per_dim, reduction)
        assert ours.info["baseline"] == "zero_keep_bos" and ours.info["n_steps"] == POINTS and ours.reduction == reduction
        row = ours.row()
        rel = float((row - theirs).abs().max() / theirs.abs().max())
        assert rel < 5e-4, (reduction, rel, row.tolist(), theirs.tolist())
        assert row.topk(3).indices.tolist() == theirs.topk(3).indices.tolist()
        assert float(row[0]) == 0.0 == float(theirs[0])  # BOS is in the baseline


def test_the_answer_contrast_equals_captum_on_smollm2(smollm2, one_thread_module):
    """GrAInS's objective through ``attribute``: a multi-token answer against another, each sequence's IG (over prompt
    and answer tokens) equal to captum's on it within the same 5e-4 of the largest score."""
    from interp.attribution.objectives import Answer

    prompt, pos, neg = "The Eiffel Tower is in", " the city of Paris", " Rome"
    ours = attribute(smollm2, prompt, pos, method="integrated_gradients", objective=Answer(against=neg),
                     rule="gausslegendre", max_points=POINTS)
    toks = smollm2.to_tokens(prompt)[0]
    assert ours.scores.shape == (2, len(toks)) and ours.target_tokens == [pos, neg]
    for row, (answer, sign) in enumerate(((pos, 1.0), (neg, -1.0))):
        ids = smollm2.tokenizer(answer, add_special_tokens=False).input_ids
        theirs = sign * captum_layer_ig(smollm2, toks, ids, n_steps=POINTS, objective="answer")
        full = torch.cat([ours.scores[row], torch.tensor(ours.info["answer_scores"][row])])
        rel = float((full - theirs).abs().max() / theirs.abs().max())
        assert rel < 5e-4, (row, rel, full.tolist(), theirs.tolist())
