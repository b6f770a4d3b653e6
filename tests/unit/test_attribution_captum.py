"""Embedding IG equals captum's ``LayerIntegratedGradients`` on a random Llama, and the per-token reduction setting.

Same objective (the target's probability), same baseline (BOS kept, the rest zero; or the pad token), same points
(Gauss-Legendre with the same count): the per-token signed sums and L2 norms agree to float32 rounding (measured
max relative difference 4e-7). The default adaptive rule agrees with captum at 50 points within its 1% completeness
tolerance. Reductions a method has no use for are refused, and the reduction is recorded, saved and shown.
"""

from __future__ import annotations

import pytest
import torch

from interp.attribution import attribute
from interp.attribution.captum_ref import captum_layer_ig
from interp.errors import InterpError
from interp.testing import random_model

PROMPT = "the cat sat on the"


@pytest.fixture(scope="module")
def llama():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield random_model("llama")
    torch.set_num_threads(old)


def _target(model) -> int:
    return int(model.to_tokens(" ", prepend_bos=False)[0, 0])


def _close(ours: torch.Tensor, theirs: torch.Tensor, rel: float) -> float:
    """Max |ours - theirs| relative to the largest |theirs|; asserts it is at most ``rel``."""
    d = float((ours - theirs).abs().max() / theirs.abs().max())
    assert d <= rel, (d, ours.tolist(), theirs.tolist())
    return d


@pytest.mark.parametrize("reduction", ["sum", "l2", "abs_sum"])
@pytest.mark.parametrize("baseline, n", [("zero_keep_bos", 16), ("zero_keep_bos", 50), ("pad", 24)])
def test_gauss_legendre_ig_equals_captum_layer_ig(llama, reduction, baseline, n):
    tgt = _target(llama)
    ours = attribute(llama, PROMPT, tgt, method="integrated_gradients", rule="gausslegendre", max_points=n,
                     baseline=baseline, reduction=reduction)
    theirs = captum_layer_ig(llama, llama.to_tokens(PROMPT)[0], tgt, n_steps=n, baseline=baseline, reduction=reduction)
    assert ours.reduction == reduction and ours.info["n_steps"] == n
    _close(ours.row(), theirs, 1e-5)
    if baseline == "zero_keep_bos":
        assert float(ours.row()[0]) == 0.0 == float(theirs[0])  # BOS is in the baseline: no attribution


def test_the_default_adaptive_rule_agrees_with_captum_within_its_tolerance(llama):
    tgt = _target(llama)
    toks = llama.to_tokens(PROMPT)[0]
    for reduction in ("sum", "l2"):
        ours = attribute(llama, PROMPT, tgt, method="integrated_gradients", reduction=reduction)
        assert float(ours.completeness_error.max()) < 0.01
        _close(ours.row(), captum_layer_ig(llama, toks, tgt, n_steps=50, reduction=reduction), 0.02)


def test_completeness_is_on_the_signed_sum_whatever_the_reduction(llama):
    """The L2 and |.|-sum runs integrate every dimension, report the signed sums' completeness (the same as the signed
    run's), and are non-negative; the sum of |.| bounds the signed sum's magnitude token by token."""
    tgt = _target(llama)
    signed = attribute(llama, PROMPT, tgt, method="integrated_gradients", max_points=60)
    top = float(signed.row().abs().max())
    for reduction in ("l2", "abs_sum"):
        other = attribute(llama, PROMPT, tgt, method="integrated_gradients", max_points=60, reduction=reduction)
        assert (other.row() >= 0).all() and not torch.allclose(other.row(), signed.row())
        assert torch.allclose(other.completeness_error, signed.completeness_error, rtol=1e-3, atol=1e-6)
        if reduction == "abs_sum":
            assert (other.row() >= signed.row().abs() - 1e-5 * top).all()


def test_reduction_defaults_are_todays_scores(llama):
    """Without ``reduction`` every method scores as before: IG and input x gradient the signed sum, gradient norm L2."""
    tgt = _target(llama)
    for method, default in (("integrated_gradients", "sum"), ("input_x_gradient", "sum"), ("gradient_norm", "l2")):
        plain = attribute(llama, PROMPT, tgt, method=method, **({"max_points": 40} if method == "integrated_gradients" else {}))
        named = attribute(llama, PROMPT, tgt, method=method, reduction=default,
                          **({"max_points": 40} if method == "integrated_gradients" else {}))
        assert plain.reduction == default and torch.equal(plain.scores.nan_to_num(), named.scores.nan_to_num())
    g2 = attribute(llama, PROMPT, tgt, method="gradient_norm")
    g1 = attribute(llama, PROMPT, tgt, method="gradient_norm", reduction="abs_sum")
    assert (g1.row() >= g2.row() - 1e-7).all()  # L1 >= L2


@pytest.mark.parametrize("method", ["occlusion", "reagent", "random", "attention_ig", "attention_last_layer"])
def test_methods_without_a_reduction_refuse_one(llama, method):
    with pytest.raises(InterpError, match=rf"method '{method}' scores whole tokens, so reduction='l2' has no meaning"):
        attribute(llama, PROMPT, method=method, reduction="l2")
    assert attribute(llama, PROMPT, method="random").reduction is None


def test_unknown_reduction_is_refused_naming_it(llama):
    with pytest.raises(InterpError, match="unknown per-token reduction 'mean'; choose one of sum, l2, abs_sum"):
        attribute(llama, PROMPT, method="integrated_gradients", reduction="mean")


def test_reduction_is_saved_loaded_and_shown(llama, tmp_path):
    from interp.attribution.result import TokenAttribution
    from interp.viz.attribution import matrix_figure, token_figure

    a = attribute(llama, PROMPT, _target(llama), method="input_x_gradient", reduction="l2")
    b = TokenAttribution.load(a.save(tmp_path / "a.safetensors"))
    assert b.reduction == "l2" and torch.equal(a.scores, b.scores)
    fig = token_figure(b)
    assert "L2 norm" in fig.layout.title.text and any("score (L2 norm)" in h for r in fig.data[0].hovertext for h in r if h)
    assert "L2 norm" in matrix_figure(b).layout.title.text
    occ = attribute(llama, PROMPT, method="occlusion")
    assert occ.reduction is None and token_figure(occ).layout.title.text.startswith("occlusion:")


def test_a_file_written_before_the_reduction_field_still_loads(llama, tmp_path):
    """Files saved before ``reduction`` existed have no such entry: they load with None (strict loading otherwise)."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    from interp.attribution.result import TokenAttribution

    path = attribute(llama, PROMPT, method="occlusion").save(tmp_path / "new.safetensors")
    with safe_open(path, "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    fields = json.loads(meta["fields"])
    del fields["reduction"]
    save_file(tensors, tmp_path / "old.safetensors", {**meta, "fields": json.dumps(fields)})
    old = TokenAttribution.load(tmp_path / "old.safetensors")
    assert old.reduction is None and torch.equal(old.scores.nan_to_num(), attribute(llama, PROMPT, method="occlusion").scores.nan_to_num())


def test_the_old_budget_names_still_work_with_a_deprecation_warning(llama):
    tgt = _target(llama)
    new = attribute(llama, PROMPT, tgt, method="integrated_gradients", max_points=60)
    with pytest.warns(DeprecationWarning, match="max_steps is deprecated.*pass max_points"):
        old = attribute(llama, PROMPT, tgt, method="integrated_gradients", max_steps=60)
    assert torch.equal(new.scores.nan_to_num(), old.scores.nan_to_num())
    gl = attribute(llama, PROMPT, tgt, method="integrated_gradients", rule="gausslegendre", max_points=20)
    with pytest.warns(DeprecationWarning, match="n_steps is deprecated"):
        gl_old = attribute(llama, PROMPT, tgt, method="integrated_gradients", rule="gausslegendre", n_steps=20)
    assert torch.equal(gl.scores.nan_to_num(), gl_old.scores.nan_to_num()) and gl.info["n_steps"] == 20
    default = attribute(llama, PROMPT, tgt, method="integrated_gradients")
    with pytest.warns(DeprecationWarning, match="n_steps is deprecated and never set the adaptive rule's budget") as w:
        alone = attribute(llama, PROMPT, tgt, method="integrated_gradients", n_steps=24)  # as before: no effect
    assert torch.equal(default.scores.nan_to_num(), alone.scores.nan_to_num())
    assert w[0].filename == __file__  # attributed to the caller, so a script or notebook sees it
    a = attribute(llama, PROMPT, tgt, method="attention_ig", max_points=30)
    with pytest.warns(DeprecationWarning, match="attention_ig: max_steps is deprecated"):
        b = attribute(llama, PROMPT, tgt, method="attention_ig", max_steps=30)
    assert torch.equal(a.scores.nan_to_num(), b.scores.nan_to_num())


@pytest.mark.parametrize("baseline", ["zero_keep_bos", "pad"])
def test_the_answer_objective_equals_captum_on_both_sequences(llama, baseline):
    """``Answer(against)`` (GrAInS's contrast): row 0 is captum's IG of log P(y+) over prompt + y+, row 1 minus captum's
    IG of log P(y-) over prompt + y-, and the answer tokens' own scores agree too (float32 rounding, as above)."""
    from interp.attribution.objectives import Answer

    toks = llama.to_tokens(PROMPT)[0]
    pos, neg = [int(t) for t in toks[1:4]], [int(t) for t in toks[2:4]]  # answers of 3 and 2 tokens
    ours = attribute(llama, PROMPT, pos, method="integrated_gradients", objective=Answer(against=neg),
                     rule="gausslegendre", max_points=24, baseline=baseline)
    p = len(toks)
    for row, (answer, sign) in enumerate(((pos, 1.0), (neg, -1.0))):
        theirs = sign * captum_layer_ig(llama, toks, answer, n_steps=24, baseline=baseline, objective="answer")
        assert theirs.shape == (p + len(answer),)
        _close(torch.cat([ours.scores[row], torch.tensor(ours.info["answer_scores"][row])]), theirs, 1e-5)
