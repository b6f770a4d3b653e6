"""GrAInS on SmolLM2 with its defaults steers the sentiment contrast the preferred way on held-out templates.

The fit uses 4 train examples (one per polarity and two templates) to stay fast; bench/grains_real.py runs
the full comparison with mean difference and chooses the layer and alpha on train only (bench/results/grains_real.md).
"""

from __future__ import annotations

import pytest
import torch

from interp.steering import evaluate, fit_grains, fit_mean_difference
from interp.steering.sentiment import sentiment_contrast

pytestmark = pytest.mark.real

LAYER = 12  # chosen on train by bench/grains_real.py


@pytest.fixture(scope="module")
def fitted(smollm2):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    train = sentiment_contrast("train")
    fit_set = [train[0], train[1], train[50], train[51]]  # templates 0 and 2, a positive and a negative cue each
    yield fit_grains(smollm2, fit_set, layers=[LAYER], progress=False), fit_mean_difference(smollm2, fit_set, [LAYER])
    torch.set_num_threads(old)


def test_sentiment_split_is_disjoint_by_template():
    train, held = sentiment_contrast("train"), sentiment_contrast("heldout")
    assert len(train) + len(held) >= 150
    frame = lambda e: e.prompt.split(" the ")[0]  # noqa: E731 - the words before the subject name the template
    assert not {frame(e) for e in train} & {frame(e) for e in held}


def test_grains_defaults_steer_held_out_the_preferred_way(smollm2, fitted, prose_heldout):
    """Positive alpha raises the held-out log-prob gap (positive minus negative word), negative alpha lowers it;
    the GrAInS vector points the same way as mean difference. A third of the mean residual norm at the layer is
    the strength (the bench's chosen alpha is of that order); a gain of 0.3 nats is well above the rounding of
    a float32 forward (1e-4) and below the bench's held-out gains."""
    grains, md = fitted
    assert float(torch.cosine_similarity(grains.vector(LAYER), md.vector(LAYER), 0)) > 0
    held = sentiment_contrast("heldout")[::6]  # 12 examples, all three held-out templates, both polarities
    alpha = round(md.meta["resid_norm"][0] / 3, 2)
    ev = evaluate(smollm2, grains, held, alphas=[-alpha, alpha], fluency_texts=prose_heldout[:2], progress=False)
    minus, zero, plus = (float(ev.mean_gap[0, ev.alphas.index(a)]) for a in (-alpha, 0.0, alpha))
    assert plus > zero + 0.3 and minus < zero - 0.3, (minus, zero, plus)
