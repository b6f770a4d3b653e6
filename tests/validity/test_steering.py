"""GrAInS steering on random-weight models: the hook's invariants, fitting, planted-direction recovery, I/O.

Planted ground truth: a hook writes +c·u (trigger token) or −c·u (anti-trigger token) into the residual stream
of the last layer, where u raises logit(a) − logit(b); GrAInS must find u from attributions alone.
"""

from __future__ import annotations

import json

import pytest
import torch

from interp.errors import InterpError
from interp.steering import (
    ContrastExample,
    SteeringVectors,
    aggregate,
    evaluate,
    fit_grains,
    fit_mean_difference,
    grains_attribution,
    load_contrast,
    mask_tokens,
    save_contrast,
    steering_hook,
    top_k_positions,
)
from interp.testing import random_model


@pytest.fixture(scope="module")
def gpt2():
    return random_model("gpt2", seed=1)


@pytest.fixture(scope="module")
def llama():
    return random_model("llama", seed=2)


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def _random_vectors(model, layers, seed=0) -> SteeringVectors:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(len(layers), model.cfg.d_model, generator=g)
    return SteeringVectors(v / v.norm(dim=-1, keepdim=True), layers, "random", "test")


# ---- the hook ---------------------------------------------------------------------------------------
def test_hook_alpha_zero_is_bitwise_identity_and_norms_preserved():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(3, 7, 32, generator=g) * torch.rand(3, 7, 1, generator=g) * 10
    v = torch.randn(32, generator=g)
    assert torch.equal(steering_hook(v, 0.0)(h), h)  # no shortcut in the hook: h + 0·v and ||h||/||h|| are exact
    for alpha in (0.1, 1.0, 10.0, 1000.0, -5.0):
        out = steering_hook(v, alpha)(h)
        # rtol 1e-5: float32 rounding of two norms and a product (~1e-7 each), far below any real change
        torch.testing.assert_close(out.norm(dim=-1), h.norm(dim=-1), rtol=1e-5, atol=0)
        assert not torch.allclose(out, h)
    off = steering_hook(v, 5.0, "official_seq")(h)  # the reference code's axis: per-token norms are NOT kept
    assert not torch.allclose(off.norm(dim=-1), h.norm(dim=-1), rtol=1e-3)
    torch.testing.assert_close(off.norm(dim=1), h.norm(dim=1), rtol=1e-5, atol=0)  # it keeps norms over positions


def test_hook_alignment_is_monotone_in_alpha():
    g = torch.Generator().manual_seed(1)
    h, v = torch.randn(1, 20, 16, generator=g, dtype=torch.float64), torch.randn(16, generator=g, dtype=torch.float64)
    cos = [torch.nn.functional.cosine_similarity(steering_hook(v, a)(h), v.expand_as(h), dim=-1) for a in (0, 0.5, 1, 2, 4, 8, 1e6)]
    for a, b in zip(cos, cos[1:]):
        assert (b >= a - 1e-12).all()  # d cos / d alpha ∝ ||h||² − <h, v̂>² ≥ 0 (exact in float64 up to rounding)
    torch.testing.assert_close(cos[-1], torch.ones_like(cos[-1]), atol=1e-6, rtol=0)  # alpha → ∞: h' → ||h|| v̂


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_steer_in_model_identity_norms_cache_and_cleanup(family, request):
    model = request.getfixturevalue(family)
    vec = _random_vectors(model, [0])
    tokens = model.to_tokens("the cat sat on the mat")
    name = "blocks.0.hook_resid_post"
    plain, cache = model.run_with_cache(tokens, names_filter=[name])
    with vec.steer(model, 0.0):
        assert torch.equal(model(tokens), plain)  # alpha = 0: bit for bit
    alpha = 3 * float(cache[name].norm(dim=-1).mean())
    with vec.steer(model, alpha):
        steered, scache = model.run_with_cache(tokens, names_filter=[name])
    # the cache records the steered activation; layer 0's input is unchanged, so its per-token norm must be kept
    torch.testing.assert_close(scache[name].norm(dim=-1), cache[name].norm(dim=-1), rtol=1e-5, atol=0)
    assert (steered - plain).abs().max() > 1e-3
    assert torch.equal(model(tokens), plain)  # hooks removed on exit
    with pytest.raises(RuntimeError), vec.steer(model, alpha):
        raise RuntimeError("boom")
    assert torch.equal(model(tokens), plain)  # ... also after an error

    def greedy(cache_on: bool, norm_mode: str = "per_token"):
        with vec.steer(model, alpha, norm_mode=norm_mode):
            out = model.generate(tokens, max_new_tokens=6, do_sample=False, use_past_kv_cache=cache_on, verbose=False,
                                 output_logits=True, stop_at_eos=False)
        return out.sequences, torch.stack(out.logits)

    seq_c, log_c = greedy(True)
    seq_n, log_n = greedy(False)
    assert torch.equal(seq_c, seq_n)
    # 1e-4: cached and uncached attention sum in a different order (float32 rounding only)
    torch.testing.assert_close(log_c, log_n, atol=1e-4, rtol=1e-4)
    # the reference rule normalises over positions, so a 1-token cached step is steered differently
    assert not torch.allclose(greedy(True, "official_seq")[1], greedy(False, "official_seq")[1], atol=1e-3)


def test_vectors_save_load_select_and_errors(gpt2, llama, tmp_path):
    vec = _random_vectors(gpt2, [0, 1])
    vec = SteeringVectors(vec.vectors, vec.layers, "grains", "m", meta={"k": 3, "raw_norms": [1.0, 2.0]})
    back = SteeringVectors.load(vec.save(tmp_path / "v.safetensors"))
    assert torch.equal(back.vectors, vec.vectors) and back.layers == [0, 1] and back.meta == vec.meta
    assert torch.equal(vec.select(1).vectors[0], vec.vectors[1])
    with pytest.raises(InterpError, match="layer"):
        vec.vector(5)
    with pytest.raises(InterpError, match="d_model"):
        _random_vectors(gpt2, [0]).__class__(torch.ones(1, 7), [0], "x", "y").hooks(gpt2, 1.0)
    with pytest.raises(InterpError, match="do not exist"):
        SteeringVectors(torch.ones(1, gpt2.cfg.d_model), [9], "x", "y").hooks(gpt2, 1.0)
    with pytest.raises(InterpError, match="norm_mode"):
        steering_hook(torch.ones(4), 1.0, "sideways")


# ---- data ---------------------------------------------------------------------------------------------
def test_contrast_jsonl_roundtrip_and_errors(tmp_path):
    ex = [ContrastExample("mia likes", " apples", " pears", "mia"), ContrastExample("leo likes", " rice", " soup")]
    back = load_contrast(save_contrast(tmp_path / "c.jsonl", ex))
    assert back == ex
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "a", "preferred": " b"}) + "\n")
    with pytest.raises(InterpError, match="bad.jsonl:1: missing key"):
        load_contrast(bad)
    bad.write_text("{not json\n")
    with pytest.raises(InterpError, match="not valid JSON"):
        load_contrast(bad)
    with pytest.raises(InterpError, match="both"):
        ContrastExample("p", " x", " x")
    with pytest.raises(InterpError, match="empty"):
        ContrastExample("", " x", " y")


# ---- selection, masking, aggregation ----------------------------------------------------------------
def test_top_k_and_masking():
    scores = torch.tensor([0.5, -2.0, 3.0, 0.0, 1.0, -1.0, 2.0, -0.5])
    pos, neg = top_k_positions(scores, 3)
    assert pos.tolist() == [2, 6, 4] and neg.tolist() == [1, 5, 7]
    pos, neg = top_k_positions(scores, 3, exclude=[2, 1])
    assert pos.tolist() == [6, 4, 0] and neg.tolist() == [5, 7, 3]
    pos, neg = top_k_positions(scores, 20)
    assert sorted(pos.tolist()) == list(range(8)) and len(set(neg.tolist())) == 8  # min(k, T) distinct
    ids = torch.arange(10, 18)
    out = mask_tokens(ids, torch.tensor([1, 4]), 99)
    assert out.shape == ids.shape and (out != ids).nonzero().squeeze(-1).tolist() == [1, 4] and (out[[1, 4]] == 99).all()


def test_aggregate_recovers_planted_directions():
    g = torch.Generator().manual_seed(0)
    d, n = 64, 100
    u = torch.randn(d, generator=g)
    u /= u.norm()
    a = 0.5 + 1.5 * torch.rand(n, 1, generator=g)  # U[0.5, 2] amounts along u
    deltas = a * u + 0.05 * torch.randn(n, d, generator=g)
    pc = aggregate(-deltas, "pca")  # a negative direction too: the sign must follow the mean, not the SVD
    assert abs(float(pc.norm()) - 1) < 1e-5 and float(pc @ (-deltas).mean(0)) >= 0
    assert _cos(pc, -u) > 0.99  # noise 0.05·√64 = 0.4 per row against a spread of ~0.43: PC1 is u within a few degrees
    shift = u + 0.05 * torch.randn(n, d, generator=g)  # a constant shift: PCA (centred) cannot see it, the mean can
    assert _cos(aggregate(shift, "mean"), u) > 0.99
    assert abs(_cos(aggregate(shift, "pca"), u)) < 0.5


# ---- planted end-to-end -----------------------------------------------------------------------------
@pytest.fixture()
def planted(gpt2):
    """Trigger 'x' writes +c·u and anti-trigger 'q' writes −c·u into blocks.{L-1}.hook_resid_post at and after it.

    The write is a differentiable function of the token embeddings (so IG can see it): the trigger and
    anti-trigger embeddings get ±w added, and the hook reads r_t = <resid_pre_0[t], w> and adds c·u·Σ_{j≤t} r_j.
    u is the (centred) unembedding direction of logit('a') − logit('b'), so the trigger favours 'a'.
    """
    model = gpt2
    tok = model.tokenizer
    x, q, a, b = (tok.convert_tokens_to_ids(s) for s in "xqab")
    g = torch.Generator().manual_seed(3)
    d, last = model.cfg.d_model, model.cfg.n_layers - 1
    w = torch.randn(d, generator=g)
    w /= w.norm()
    u = model.W_U[:, a] - model.W_U[:, b]
    u = (u - u.mean()).detach()
    u /= u.norm()
    saved = model.W_E.data[[x, q]].clone()
    with torch.no_grad():
        model.W_E.data[x] += w
        model.W_E.data[q] -= w
    c = 20 * 0.3  # 20x the typical residual norm (~0.3) of this random model: the planted write dominates
    store = {}

    def read(act, hook):
        store["r"] = act @ w.to(act.dtype)
        return act

    def write(act, hook):
        return act + c * store["r"].cumsum(-1)[..., None] * u.to(act.dtype)

    model.add_hook("blocks.0.hook_resid_pre", read)
    model.add_hook(f"blocks.{last}.hook_resid_post", write)
    try:
        yield model, u, last
    finally:
        model.reset_hooks()
        with torch.no_grad():
            model.W_E.data[[x, q]] = saved


def _planted_examples(n: int) -> list[ContrastExample]:
    g = torch.Generator().manual_seed(4)
    letters = "cdefghijklmnoprstuvwy"
    out = []
    for i in range(n):
        body = [letters[j] for j in torch.randint(len(letters), (7,), generator=g)]
        body[int(torch.randint(1, 6, (1,), generator=g))] = "x" if i % 2 == 0 else "q"
        out.append(ContrastExample("".join(body), "a", "b"))
    return out


def test_grains_recovers_planted_direction(planted):
    model, u, last = planted
    ex = _planted_examples(16)
    att = grains_attribution(model, ex[0], k=1)
    trig = att.source_tokens.index("x")
    assert att.marks["top_positive"] == [trig]  # the trigger is the most important token of the contrast
    # the planted write (20x the residual norm) saturates the softmax, so 20 Gauss-Legendre steps are ~1% off
    assert float(att.completeness_error.max()) < 5e-2
    for how in ("pca", "mean"):
        vec = fit_grains(model, ex, layers=[last], k=1, aggregate=how, progress=False)
        # > 0.9 is the acceptance floor; the masked trigger removes c·u (20x the residual norm) from each delta
        assert _cos(vec.vector(last), u) > 0.9, how
    # steering along the recovered direction favours 'a' on prompts without any trigger
    plain = [ContrastExample("cdefghi", "a", "b"), ContrastExample("kkrrsst", "a", "b")]
    ev = evaluate(model, vec, plain, alphas=[2.0], fluency_texts=["the cat sat"], progress=False)
    assert (ev.gaps[0, 1] > ev.gaps[0, 0]).all()


def test_attribution_antisymmetry_and_mean_difference(gpt2):
    ex = ContrastExample("the cat", " sat", " ran")
    a, b = grains_attribution(gpt2, ex, k=2), grains_attribution(gpt2, ex.swapped(), k=2)
    # swapping preferred/dispreferred negates every attribution (rows swap); 1e-5: float32 IG sums
    torch.testing.assert_close(a.scores.flip(0), -b.scores, atol=1e-5, rtol=1e-4)
    assert float(a.completeness_error.max()) < 1e-2  # learned positions + zero baseline: IG completeness holds (spec §5.1)
    assert abs(sum(a.info["answer_scores_preferred"][-1:])) == 0.0  # the last answer token cannot affect f
    vec = fit_mean_difference(gpt2, [ex, ContrastExample("a dog", " ran", " sat")], layers=[0, -1])
    assert vec.layers == [0, gpt2.cfg.n_layers - 1] and torch.allclose(vec.vectors.norm(dim=-1), torch.ones(2))
    with pytest.raises(InterpError, match="do not exist"):
        fit_mean_difference(gpt2, [ex], layers=[7])


def test_grains_attribution_states_its_completeness_error_and_why():
    """The contrast's IG completeness error is stored with each sequence's own error and change, and the result and its
    view say why a large one is expected (a small difference of two large changes) and acceptable for steering."""
    from interp.testing import random_model
    from interp.viz.steering import contrast_token_view

    llama = random_model("llama")
    ex = ContrastExample("the cat sat on", " the", " a")
    a = grains_attribution(llama, ex, k=2, baseline="zero", max_points=21)  # rotary + all-zero baseline: far from complete
    c = a.info["completeness"]
    assert c["contrast"] == pytest.approx(float(a.completeness_error[0]), rel=1e-6) and c["contrast"] > 0.01
    assert c["change"] == pytest.approx(c["change_preferred"] - c["change_dispreferred"], abs=1e-9)
    note = a.info["completeness_note"]
    assert f"{c['contrast']:.1%} of the contrast" in note and f"{c['preferred']:.1%} (y+" in note
    assert "difference of the two changes" in note and "top-k" in note
    assert note in contrast_token_view(a).caption
    assert a.summary()["completeness"] == note
    ok = grains_attribution(llama, ex, k=2, max_points=200)
    assert ok.info["completeness_note"].endswith(")." if ok.info["completeness"]["contrast"] <= 0.01 else "not chased.")


# ---- evaluation, figures, report, widget ------------------------------------------------------------
def test_evaluate_figures_report_and_playground(gpt2, tmp_path):
    from interp.report import Report
    from interp.report.sections.steering import add_to_report
    from interp.viz.steering import contrast_attribution_figure, gap_per_example, steering_curves
    from widgets.steering import SteeringPlayground

    ex = [ContrastExample("the cat", " sat", " ran"), ContrastExample("a dog", " ran", " sat")]
    vec = fit_mean_difference(gpt2, ex, layers=[1])
    ev = evaluate(gpt2, {"md": vec, "rand": _random_vectors(gpt2, [1])}, ex, alphas=[0.5, 1.0],
                  fluency_texts=["the cat sat on the mat", "a dog ran"], progress=False)
    assert ev.alphas == [0.0, 0.5, 1.0] and ev.accuracy.shape == (2, 3) and ev.gaps.shape == (2, 3, 2)
    assert torch.equal(ev.gaps[0, 0], ev.gaps[1, 0])  # alpha = 0 is the same unsteered model for every method
    assert ((ev.accuracy * 2) == (ev.gaps > 0).sum(-1)).all()
    back = type(ev).load(ev.save(tmp_path / "ev.safetensors"))
    assert torch.equal(back.perplexity, ev.perplexity) and back.methods == ev.methods
    assert len(steering_curves(ev).data) == 4 and len(gap_per_example(ev, "md").data) == 1
    att = grains_attribution(gpt2, ex[0], k=1)
    fig = contrast_attribution_figure(att)
    assert fig.data[0].z[2] == att.scores.sum(0).tolist()
    report = Report("t")
    add_to_report(report, gpt2, "the cat", vectors=vec, alphas=[0.5])
    kinds = [k for k, _ in report.sections[0].items]
    assert kinds == ["tokens", "figure", "table"]
    report.save(tmp_path / "r.html")
    w = SteeringPlayground(gpt2, vec, prompt="the cat", preferred=" sat", dispreferred=" ran", alpha=0.5, max_alpha=2)
    assert w.error.layout.display == "none" and w.result["gap_plain"] is not None
    with vec.steer(gpt2, 0.5):
        expected = float(evaluate(gpt2, vec, ex[:1], alphas=[], fluency_texts=["a"], progress=False).gaps[0, 0, 0])
    assert abs(w.result["gap_steered"] - expected) < 1e-6  # the widget's gap is the steered model's gap
    assert w.export(tmp_path / "w.html").is_file()


def test_steered_hook_is_hf_hidden_state(gpt2):
    """Vectors are read and written at blocks.l.hook_resid_post, which is HF hidden_states[l + 1] for l < L - 1
    (raw HF weights, eager attention); the last HF entry is after the final norm, the reference code's quirk."""
    tokens = gpt2.to_tokens("the cat sat on the mat")
    n = gpt2.cfg.n_layers
    _, cache = gpt2.run_with_cache(tokens, names_filter=[f"blocks.{layer}.hook_resid_post" for layer in range(n)])
    with torch.no_grad():
        hidden = gpt2.original_model(tokens, output_hidden_states=True).hidden_states
    for layer in range(n - 1):
        # 1e-5: the same float32 computation, only hook plumbing in between
        torch.testing.assert_close(cache[f"blocks.{layer}.hook_resid_post"], hidden[layer + 1], atol=1e-5, rtol=1e-5)
