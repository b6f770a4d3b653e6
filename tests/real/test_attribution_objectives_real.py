"""The contrast objective on SmolLM2: "The capital of France is" -> " Paris" rather than " London" is decided by the
subject, so occlusion of the contrast ranks " France" among its top 3 (the fact prompts of bench/results/
attribution_grid.md find the subject in occlusion's top 3 on 72% of facts; this one is checked outright because the
contrast removes what the two capitals share)."""

from __future__ import annotations

import pytest

from interp.attribution import Contrast, attribute

pytestmark = [pytest.mark.real, pytest.mark.usefixtures("one_thread_module")]


def test_the_subject_decides_paris_against_london(smollm2):
    a = attribute(smollm2, "The capital of France is", " Paris", method="occlusion", objective=Contrast(" London"))
    france = a.source_tokens.index(" France")
    assert france in a.top(3)
    assert a.options["objective"].startswith("logprob contrast against token")  # a Contrast compares log-probabilities by default
