"""Ground truth on SmolLM2-135M: induction (the earlier occurrence decides) and fact prompts (the subject decides).

A subset of the bench's prompts (bench/results/attribution_real.md has the full tables over >= 50 of each kind).
"""

from __future__ import annotations

import pytest

from interp.attribution.truth import FACTS, fact_prompts, induction_prompts, truth_rates

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def model(smollm2):
    return smollm2  # the real tier's session fixture (tests/real/conftest.py)


@pytest.fixture(scope="module")
def induction(model):
    return induction_prompts(model, 8, seed=0)


def test_prompts_are_decided_where_the_data_says(model, induction):
    assert len(induction) == 8
    for p in induction:
        (src,) = p.sources
        assert int(p.tokens[src]) == p.target_id  # the earlier occurrence of the target word
        assert src < p.tokens.shape[0] - 1
    facts = fact_prompts(model)
    assert len(facts) >= 50 and len(FACTS) >= len(facts)
    tok = model.tokenizer
    eiffel = next(f for f in facts if f.text.startswith("The Eiffel"))
    assert tok.decode(eiffel.tokens[list(eiffel.sources)]).strip() == "Eiffel Tower"
    assert tok.decode([eiffel.target_id]) == " Paris"


def test_occlusion_finds_the_earlier_occurrence_random_does_not(model, induction):
    """>= 7 of 8 in the top 3 (the acceptance's 80% with one miss allowed on a subset this small); random's top 3
    covers 3 of ~18 tokens, so a seeded random ranking gets about 1 or 2 of 8, far below."""
    assert truth_rates(model, induction, "random", seed=0)["top3"] <= 0.375
    assert truth_rates(model, induction, "occlusion")["top3"] >= 7 / 8


def test_ig_and_reagent_at_their_defaults_beat_random_on_induction(model, induction):
    """IG and ReAGent with their defaults, on the same 8 prompts. Measured here: IG top-3 6 of 8 (75%; 70% over 50
    prompts in the bench, below the issue's 80% goal: bench/results/attribution_real.md says where it misses, IG
    credits other words of the first list, which the copy also depends on); ReAGent (cycle masks) 8 of 8 with seeds
    0 and 1 (the Bernoulli masks of the reference code: 5 of 8; over 50 prompts in the bench, 0.82 vs 0.70). The
    floors allow one prompt fewer than measured, for float rounding that differs between CPUs (a ReAGent stop
    decision, an IG ranking of near ties); random's expected top-3 rate is ~1.3 of 8 (3 of ~18 positions), and
    >= 5 of 8 by chance has probability ~0.005."""
    ig = truth_rates(model, induction, "integrated_gradients")
    assert ig["top3"] >= 5 / 8, ig["hits"]
    assert all(float(a.completeness_error.max()) < 0.01 for a in ig["attributions"])  # the default call is complete
    ra = truth_rates(model, induction, "reagent", seed=0)
    assert ra["top3"] >= 7 / 8, ra["hits"]


def test_attention_ig_finds_the_earlier_occurrence(model, induction):
    """IG over attention gates at its defaults, on the same 8 prompts: measured 8 of 8 in the top 3 (ranks 1, 2, 1, 2,
    1, 1, 1, 1; over 50 prompts in the bench 0.98 top-3, against embedding IG's 0.70: bench/results/attribution_real.md
    4d). The floor allows one miss for float rounding between CPUs; random's chance of >= 7 of 8 is below 1e-3. Every
    call is complete to the rule's 1% and the scores add up to f(x) - f(nothing read)."""
    rates = truth_rates(model, induction, "attention_ig")
    assert rates["top3"] >= 7 / 8, rates["hits"]
    for a in rates["attributions"]:
        assert float(a.completeness_error.max()) < 0.01
        total = float(a.info["objective"][0]) - float(a.info["baseline_objective"][0])
        assert abs(float(a.scores[0].nansum()) - total) <= 0.01 * abs(total)
