"""The whole-answer objective (``Answer``): one IG row per answer whatever its length, completeness on the signed sum,
and, with ``against``, GrAInS's contrast of two answers through ``attribute``. Checked against the per-token objectives
it must agree with where they mean the same thing (a one-token answer), with a fixed quadrature rule so both integrate
the same path at the same points: the two then differ only by float32 rounding of forwards of different lengths."""

import pytest
import torch

from interp.attribution import attribute
from interp.attribution.objectives import Answer, Contrast
from interp.errors import InterpError
from interp.steering import ContrastExample, grains_attribution

FIXED = dict(method="integrated_gradients", rule="gausslegendre", max_points=16)


def _one_token(model, text: str) -> int:
    ids = model.tokenizer(text, add_special_tokens=False).input_ids
    assert len(ids) == 1, text
    return ids[0]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_one_token_answer_equals_the_logprob_objective(random_models, family):
    model = random_models[family]
    prompt, target = "the cat sat on", _one_token(model, "t")
    a = attribute(model, prompt, target, objective=Answer(), **FIXED)
    b = attribute(model, prompt, target, objective="logprob", **FIXED)
    assert a.scores.shape == b.scores.shape == (1, b.target_positions[0])
    torch.testing.assert_close(a.scores, b.scores, atol=1e-5, rtol=1e-4)
    assert a.options["objective"] == "answer logprob" and a.info["answer_scores"] == [[0.0]]  # the last token: no effect


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_one_token_contrast_rows_sum_to_the_token_contrast(random_models, family):
    """Answer(against) for one-token answers: row 0 + row 1 is IG of log P(y+) - log P(y-), the ``Contrast`` objective."""
    model = random_models[family]
    prompt, pos, neg = "a dog ran to", _one_token(model, "t"), _one_token(model, "a")
    a = attribute(model, prompt, pos, objective=Answer(against=neg), **FIXED)
    c = attribute(model, prompt, pos, objective=Contrast(neg, kind="logprob"), **FIXED)
    assert a.scores.shape == (2, c.scores.shape[1]) and a.target_ids == [pos, neg]
    torch.testing.assert_close(a.scores.sum(0, keepdim=True), c.scores, atol=1e-5, rtol=1e-4)


def test_a_long_answer_is_one_row_and_complete(random_models):
    """An answer of several tokens, one row over the prompt; the signed sums over prompt and answer tokens match f(x) -
    f(baseline) to the adaptive rule's tolerance (1%, GPT-2's learned positions make the zero-baseline path smooth)."""
    model = random_models["gpt2"]
    a = attribute(model, "the cat sat on", " the big red", method="integrated_gradients", objective=Answer())
    n_prompt = len(model.to_tokens("the cat sat on")[0])
    assert a.scores.shape == (1, n_prompt) and a.target_tokens == [" the big red"] and a.target_positions == [n_prompt]
    n_answer = len(model.tokenizer(" the big red", add_special_tokens=False).input_ids)
    assert n_answer > 1 and len(a.info["answer_scores"][0]) == n_answer and float(a.completeness_error[0]) < 0.01
    c = a.info["completeness"]
    assert abs(a.info["total"] - c["change"]) <= 0.01 * abs(c["change"]) + 1e-6


def test_grains_attribution_is_attribute_with_the_answer_contrast(random_models):
    model = random_models["llama"]
    ex = ContrastExample("the cat sat on", " the mat", " a")
    g = grains_attribution(model, ex, k=2, max_points=60)
    a = attribute(model, ex.prompt, ex.preferred, method="integrated_gradients", objective=Answer(ex.dispreferred),
                  max_points=60)
    assert torch.equal(g.scores, a.scores) and torch.equal(g.completeness_error, a.completeness_error)
    assert g.target_tokens == a.target_tokens == [" the mat", " a"] and g.method == "grains"
    assert a.info["completeness_note"] == g.info["completeness_note"]
    swapped = attribute(model, ex.prompt, ex.dispreferred, method="integrated_gradients",
                        objective=Answer(ex.preferred), max_points=60)
    torch.testing.assert_close(swapped.scores.flip(0), -a.scores, atol=1e-5, rtol=1e-4)  # antisymmetric


def test_answer_is_refused_where_it_has_no_meaning(random_models):
    model = random_models["gpt2"]
    with pytest.raises(InterpError, match="cannot explain a whole answer"):
        attribute(model, "the cat", " sat", method="occlusion", objective=Answer())
    with pytest.raises(InterpError, match="has no tokens"):
        attribute(model, "the cat", " sat", method="integrated_gradients", objective=Answer(against=""))
    with pytest.raises(InterpError, match="not in the model's vocabulary"):
        attribute(model, "the cat", " sat", method="integrated_gradients", objective=Answer(against=[10**9]))
    with pytest.raises(InterpError, match=r"Answer\(against=...\) must be text, a token id or a list of token ids"):
        attribute(model, "the cat", " sat", method="integrated_gradients", objective=Answer(against=1.5))
    n_ctx = model.cfg.n_ctx
    with pytest.raises(InterpError, match="prompt plus the other answer is .* context is"):
        attribute(model, "the cat", " sat", method="integrated_gradients", objective=Answer(against=[5] * n_ctx))


def test_completeness_of_an_answer_is_on_the_signed_sums_whatever_the_reduction(random_models):
    """With ``reduction="l2"`` the rows are norms, but the completeness error and ``total`` are the signed sums' (the
    same as the signed run's, which integrates the same points)."""
    model = random_models["gpt2"]
    kw = dict(method="integrated_gradients", objective=Answer(against=" ran"), rule="gausslegendre", max_points=16)
    signed = attribute(model, "the cat", " sat on", **kw)
    normed = attribute(model, "the cat", " sat on", reduction="l2", **kw)
    assert (normed.scores[0] >= 0).all() and normed.reduction == "l2"
    assert normed.info["total"] == pytest.approx(signed.info["total"], rel=1e-5, abs=1e-7)
    torch.testing.assert_close(normed.completeness_error, signed.completeness_error, rtol=1e-4, atol=1e-7)
