"""The contrast objective (``attribute(..., objective=Contrast(against))``) on a model with a planted mechanism: the
trigger token decides the answer, so it must decide the contrast of the answer against any other token too; and the
contrast is what its definition says (the difference of the two log-probabilities), bit-close for the linear methods
and within IG's completeness tolerance."""

from __future__ import annotations

import pytest
import torch

from interp.attribution import Contrast, attribute
from interp.attribution.planted import trigger_model

pytestmark = [pytest.mark.validity, pytest.mark.usefixtures("one_thread_module")]

PROMPT = "abcqdefgh"  # the trigger "q" is at position 4 (BOS first)


@pytest.fixture(scope="module")
def planted():
    return trigger_model(amplitude=2.0)


def test_the_contrast_is_the_difference_of_the_two_log_probabilities(planted):
    """input x gradient with the signed sum is linear in the objective: Contrast(z) = logprob(q) - logprob(z) exactly
    (float32 rounding of two backward passes against one: 1e-5)."""
    model, tid = planted
    other = model.tokenizer.convert_tokens_to_ids("z")
    both = attribute(model, PROMPT, tid, method="input_x_gradient", objective=Contrast(other))
    one = attribute(model, PROMPT, tid, method="input_x_gradient", objective="logprob")
    two = attribute(model, PROMPT, other, method="input_x_gradient", objective="logprob")
    torch.testing.assert_close(both.scores, one.scores - two.scores, atol=1e-5, rtol=0, equal_nan=True)
    assert both.options["objective"] == f"logprob contrast against token {other}"


@pytest.mark.parametrize("method", ["integrated_gradients", "input_x_gradient", "occlusion"])
def test_the_methods_find_the_trigger_in_the_contrast(planted, method):
    """The planted trigger is the only token that moves p(q) against p(z): it is ranked first by each method that
    measures a token's effect. (Gradient norm is left out: it measures local sensitivity, and on this model the
    trigger's gradient is the smallest of all with the plain log-probability as well, so that is the method's property,
    not the objective's.)"""
    model, tid = planted
    a = attribute(model, PROMPT, tid, method=method, objective=Contrast("z"))
    assert a.top(1)[0] == 4
    if method == "integrated_gradients":  # completeness holds for the contrast as for any objective of one sequence
        assert float(a.completeness_error.max()) < 0.01
