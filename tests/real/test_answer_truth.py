"""The whole-answer contrast (``Answer(against)``, GrAInS's objective) finds what decides a fact on SmolLM2-135M.

On the first five fact prompts the model answers right (``truth.fact_prompts``: landmarks, "The Eiffel Tower is in the
city of" -> " Paris"), IG of log P(right city) - log P(another city) summed over the two rows puts a subject token in
its top 3 on at least four (measured: five of five, and 19 of the first 20 facts, on 2026-12-07; chance about 0.6 for
these prompts' lengths), and each call is complete to within 30% of the contrast (measured 0.1-28%: the contrast is a
difference of two sequences' changes, each complete to the rule's 1%). Deterministic: the same prompts give the same
scores, so a regression in the objective, the two-sequence IG or the row signs flips hits.
"""

from __future__ import annotations

import warnings

import pytest

from interp.attribution import Answer, attribute
from interp.attribution.truth import FACTS, fact_prompts

pytestmark = pytest.mark.real

CITIES = (" Paris", " Rome")


def test_answer_contrast_puts_the_subject_in_its_top_3(smollm2, one_thread_module):
    answers = {text: answer for text, answer, _subject in FACTS}
    hits = []
    for p in fact_prompts(smollm2)[:5]:
        right = answers[p.text]
        other = CITIES[0] if right != CITIES[0] else CITIES[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = attribute(smollm2, p.text, right, method="integrated_gradients", objective=Answer(against=other))
        assert a.target_tokens == [right, other] and a.scores.shape == (2, p.tokens.shape[0])
        assert float(a.completeness_error[0]) < 0.3
        hits.append(bool(set(a.scores.sum(0).topk(3).indices.tolist()) & set(p.sources)))
    assert sum(hits) >= 4, hits
