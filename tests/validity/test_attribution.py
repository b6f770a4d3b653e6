"""Token attribution: planted ground truth, ReAGent invariants, IG completeness and batching, results, errors."""

from __future__ import annotations

import dataclasses
import math
import random
import warnings

import pytest
import torch

from interp.attribution import REAGENT_FAST, TokenAttribution, attribute, embedding_ig, method_names
from interp.attribution.faithfulness import faithfulness
from interp.attribution.forward import LastLogits
from interp.attribution.objectives import TargetObjective
from interp.attribution.planted import trigger_model
from interp.attribution.reagent import _cycle_mask, _update, reagent_scores
from interp.attribution.samplers import ModelSampler, UniformSampler, UnigramSampler
from interp.errors import InterpError
from interp.testing import random_model

LETTERS = "abcdefghijklmnoprstuvwxyz"  # no "q": the trigger


@pytest.fixture(scope="module")
def planted():
    return trigger_model()


@pytest.fixture(scope="module")
def certain():
    return trigger_model(amplitude=20.0, offset=4.0)


@pytest.fixture(scope="module")
def gpt2():
    return random_model("gpt2")


@pytest.fixture(scope="module")
def llama():
    return random_model("llama")


def _trigger_prompts(n: int, seed: int = 0) -> list[tuple[str, int]]:
    """Prompts of 8-14 letters with one 'q' at a random place; returns (prompt, token position of q incl. BOS)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        chars = [rng.choice(LETTERS) for _ in range(rng.randint(8, 14))]
        j = rng.randrange(0, len(chars) - 1)
        chars[j] = "q"
        out.append(("".join(chars), j + 1))
    return out


# ---- planted ground truth -------------------------------------------------------------------------
def test_methods_find_the_planted_trigger(planted):
    """On the trigger model only the trigger's position decides the prediction.

    ReAGent, IG (on embeddings and on attention gates), input x gradient and occlusion must rank it first on every one
    of 12 prompts (the mechanism, an attention read of the trigger, is
    exact, so no tolerance is needed); random must do so at most 6 times (its expected rate is ~1/11, so 6/12
    has probability < 1e-4): this checks that the test prompts do not make the task trivial.
    """
    model, tid = planted
    prompts = _trigger_prompts(12)
    hits = {}
    exact = ["reagent", "integrated_gradients", "attention_ig", "input_x_gradient", "occlusion"]
    for method in [*exact, "random"]:
        hits[method] = sum(attribute(model, p, target=tid, method=method).top(1)[0] == j for p, j in prompts)
    assert all(hits[m] == 12 for m in exact), hits
    assert hits["random"] <= 6, hits


def test_reagent_other_samplers_find_the_trigger(planted):
    """Unigram (from a corpus without 'q') and model-prediction samplers recover the trigger on 4 prompts each."""
    model, tid = planted
    texts = ["hello world, how are you"] * 5
    for sampler, extra in [("unigram", {"sampler_texts": texts}), ("model", {})]:
        for p, j in _trigger_prompts(4, seed=1):
            a = attribute(model, p, target=tid, method="reagent", sampler=sampler, **extra)
            assert a.top(1)[0] == j, (sampler, p)


# ---- ReAGent invariants ---------------------------------------------------------------------------
def test_reagent_scores_positive_sum_one_deterministic(planted):
    model, tid = planted
    a = attribute(model, "abcqdefgh", target=tid, method="reagent", seed=3)
    b = attribute(model, "abcqdefgh", target=tid, method="reagent", seed=3)
    c = attribute(model, "abcqdefgh", target=tid, method="reagent", seed=4)
    r = a.row()
    assert (r > 0).all() and abs(float(r.sum()) - 1) < 1e-6
    assert torch.equal(a.scores, b.scores, ) and not torch.equal(a.scores, c.scores)
    assert a.info["converged"] == [True]


def test_reagent_certain_model_no_nan(certain):
    """The certain model gives p_o = 1 and p_r = 0 in float: without the clamp (eps=0) the update is inf -> NaN."""
    model, tid = certain
    fwd = LastLogits(model)
    x = model.to_tokens("abcqdefghij")[0]
    probs = torch.softmax(fwd(torch.stack([x, torch.where(x == tid, 1, x)])), -1)[:, tid]
    assert probs[0] == 1.0 and probs[1] < 1e-30  # the saturation actually happens on this model
    raw = reagent_scores(fwd, x, tid, UniformSampler.for_model(model), eps=0.0, max_steps=50)
    assert torch.isnan(raw.probe_scores).any()
    a = attribute(model, "abcqdefghij", target=tid, method="reagent")
    assert torch.isfinite(a.row()).all() and a.top(1)[0] == 4


@pytest.mark.parametrize("masks", ["bernoulli", "cycle"])
def test_reagent_batched_equals_step_by_step(planted, masks):
    """Same draws per (seed, step): the batched run equals the reference loop, with far fewer model calls."""
    model, tid = planted
    x = model.to_tokens("abcdefqghijklmn")[0]
    smp = UniformSampler.for_model(model)
    f1, f2 = LastLogits(model), LastLogits(model)
    a = reagent_scores(f1, x, tid, smp, seed=5, batched=True, masks=masks)
    b = reagent_scores(f2, x, tid, smp, seed=5, batched=False, masks=masks)
    # the draws and the summation order are identical; the only difference is the model's float32 output for a row
    # in a batch of 1 vs a batch of 64 (BLAS picks another kernel: ~1e-7 in the logits), hence 1e-6, not 0
    assert torch.allclose(a.scores, b.scores, atol=1e-6, rtol=0) and torch.equal(a.stopped_at, b.stopped_at)
    assert a.forward_calls < b.forward_calls


def test_reagent_cycle_masks_replace_every_position_once_per_cycle():
    """masks="cycle": in each cycle of round(1/r) steps every free position of every probe is replaced exactly once
    (so the per-step rate is r, as with Bernoulli masks), fixed positions never, and each step replaces
    floor or ceil of free/L positions; the order differs between probes and cycles. A prefix with fewer free
    positions than 1/r gets a cycle of that length (one position a step, never an empty step)."""
    fixed = torch.zeros(20, dtype=torch.bool)
    fixed[0] = True
    m = torch.stack([_cycle_mask(7, t, 5, 0.1, fixed) for t in range(1, 31)]).view(3, 10, 5, 20)  # cycle, step, probe
    assert (m.sum(1)[..., 1:] == 1).all() and not m[..., 0].any()
    assert set(m.sum(-1).unique().tolist()) <= {1, 2}
    assert not torch.equal(m[0, :, 0], m[0, :, 1]) and not torch.equal(m[0], m[1])
    short = torch.stack([_cycle_mask(7, t, 2, 0.1, torch.zeros(4, dtype=torch.bool)) for t in range(1, 9)])
    assert (short.sum(-1) == 1).all() and (short.view(2, 4, 2, 4).sum(1) == 1).all()
    with pytest.raises(ValueError, match="masks"):
        reagent_scores(lambda t: t.float(), torch.arange(4), 1, UniformSampler(10), masks="sobol")


def test_reagent_cycle_masks_find_the_trigger(planted):
    """Both mask kinds find the planted trigger first on 12 more prompts at the defaults, and with the 2 probes of
    ``REAGENT_FAST`` (the mechanism is exact, so no tolerance)."""
    model, tid = planted
    for p, j in _trigger_prompts(12, seed=2):
        for opts in ({"masks": "bernoulli"}, {"masks": "cycle"}, REAGENT_FAST):
            assert attribute(model, p, target=tid, method="reagent", **opts).top(1)[0] == j, (opts, p)


def test_reagent_update_rule_and_sign():
    """s' - s = log((1+d)/(1-d)), d = +D on replaced and -D on kept positions; D < 0 lowers the replaced ones."""
    mask = torch.tensor([True, False, True])
    u = _update(0.7, torch.tensor(0.4), mask, 1e-6)
    d = torch.tensor([0.3, -0.3, 0.3], dtype=torch.float64)
    assert torch.allclose(u, torch.log((1 + d) / (1 - d)))
    u = _update(0.2, torch.tensor(0.6), mask, 1e-6)
    assert (u[mask] < 0).all() and (u[~mask] > 0).all()


def test_reagent_unreachable_target_and_frozen_probes():
    """A target outside every top-k runs to max_steps, reports converged=False and stays finite; on a model that
    depends on position 2 only, probes stop and a probe's scores are those of its stop step (frozen)."""

    def last_lowest(tokens):  # token 0 always has the lowest logit
        return torch.arange(10.0).expand(tokens.shape[0], -1) + 0.1 * tokens[:, :1]

    with pytest.warns(UserWarning, match="no probe"):
        run = reagent_scores(last_lowest, torch.arange(1, 9), 0, UniformSampler(10), max_steps=20, num_probes=4)
    assert not run.converged and run.steps == 20 and torch.isfinite(run.scores).all()

    def copy2(tokens):
        return 5.0 * torch.nn.functional.one_hot(tokens[:, 2], 10).float()

    x = torch.tensor([1, 2, 7, 3, 4, 5, 6, 8])
    short = reagent_scores(copy2, x, 7, UniformSampler(10), seed=1, max_steps=40)
    longer = reagent_scores(copy2, x, 7, UniformSampler(10), seed=1, max_steps=400)
    assert short.converged and torch.equal(short.probe_scores, longer.probe_scores)  # nothing moves after a stop
    assert int(short.scores.argmax()) == 2


def test_reagent_short_prompt_is_explicit(planted):
    """An explicit keep_top_n the prefix cannot honour is lowered with a warning and a note; the default (8, or one
    less than the replaceable tokens) is chosen for the prefix silently."""
    model, tid = planted
    with pytest.warns(UserWarning, match="keep_top_n lowered"):
        a = attribute(model, "qa", target=tid, method="reagent", keep_top_n=5)
    assert any("keep_top_n lowered" in n for n in a.info["notes"]) and abs(float(a.row().sum()) - 1) < 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = attribute(model, "qa", target=tid, method="reagent")
    assert b.info["notes"] == [] and abs(float(b.row().sum()) - 1) < 1e-6


def test_input_independent_model_stops_at_once():
    """D = 0 for every perturbation: every probe stops at step 1 and scores stay within e of each other."""

    def const(tokens):
        return torch.arange(10.0).expand(tokens.shape[0], -1)

    run = reagent_scores(const, torch.arange(8), 9, UniformSampler(10))
    assert run.converged and run.steps == 1
    assert float(run.scores.max() / run.scores.min()) <= math.e


# ---- Integrated Gradients ---------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_ig_completeness_and_internal_batch(family, gpt2, llama):
    """Default rule and baseline: completeness error < 1% (the adaptive rule's stop tolerance); the zero baseline on
    the rotary llama under captum's fixed 50-point Gauss-Legendre rule is reported (large), not hidden, while the
    adaptive rule resolves it; internal_batch_size does not change a single number."""
    model = {"gpt2": gpt2, "llama": llama}[family]
    toks = torch.cat([model.to_tokens("hello world, how are you"), model.to_tokens("a quick brown fox jumps ")])
    fn = TargetObjective([toks.shape[1], toks.shape[1]], [5, 9])
    full = embedding_ig(model, toks, fn)
    assert (full.completeness_error < 0.01).all(), full.completeness_error
    for ibs in (2, 6, 33):
        assert torch.equal(embedding_ig(model, toks, fn, internal_batch_size=ibs).attributions, full.attributions)
    if family == "llama":
        with pytest.warns(UserWarning, match="completeness error"):
            zero = embedding_ig(model, toks, fn, baseline="zero", rule="gausslegendre", max_points=50)
        assert (zero.completeness_error > 0.05).any()
        assert (embedding_ig(model, toks, fn, baseline="zero").completeness_error < 0.01).all()
        assert full.baseline == "zero_keep_bos" and (full.attributions[:, 0] == 0).all()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_attention_ig_completeness_batching_and_baseline(family, gpt2, llama):
    """IG over attention gates: completeness error < 1% (the rule's tolerance) for two rows, the same bits for every
    internal batch size, position 0 exactly 0 when kept, and f at the baseline equal to the model run with every
    attention weight onto positions 1.. set to zero (what "nothing read" means), to float32 rounding."""
    from interp.attribution.attention_ig import attention_gate_ig, pattern_hooks

    model = {"gpt2": gpt2, "llama": llama}[family]
    toks = torch.cat([model.to_tokens("hello world, how are you"), model.to_tokens("a quick brown fox jumps ")])
    fn = TargetObjective([toks.shape[1], toks.shape[1]], [5, 9])
    full = attention_gate_ig(model, toks, fn)
    assert (full.completeness_error < 0.01).all(), full.completeness_error
    assert (full.attributions[:, 0] == 0).all() and full.baseline == "attention_off_keep_first"
    for ibs in (2, 6, 33):
        assert torch.equal(attention_gate_ig(model, toks, fn, internal_batch_size=ibs).attributions, full.attributions)

    def off(pattern, hook):  # noqa: ARG001
        out = torch.zeros_like(pattern)
        out[..., 0] = pattern[..., 0]
        return out

    with torch.no_grad():
        f0 = fn(model.run_with_hooks(toks, fwd_hooks=[(n, off) for n in pattern_hooks(model)]), toks)
    torch.testing.assert_close(full.baseline_objective, f0.float(), rtol=1e-4, atol=1e-7)
    every = attention_gate_ig(model, toks, fn, keep_bos=False)
    assert every.baseline == "attention_off" and (every.attributions[:, 0] != 0).any()
    assert (every.completeness_error < 0.01).all()


def test_ig_causality_and_matrix(gpt2):
    """A generated target matrix: each row scores only the tokens before its target (NaN after)."""
    a = attribute(gpt2, "hello there", method="integrated_gradients", generate=3)
    assert a.scores.shape == (3, len(a.source_tokens))
    for i, p in enumerate(a.target_positions):
        assert torch.isfinite(a.scores[i, :p]).all() and torch.isnan(a.scores[i, p:]).all()
    assert (a.completeness_error < 0.01).all()


# ---- results, registry, errors ------------------------------------------------------------------------
def test_every_method_runs_and_round_trips(gpt2, tmp_path):
    for method in method_names():
        a = attribute(gpt2, "hello there", target=" yo", method=method, max_steps=30) if method == "reagent" else \
            attribute(gpt2, "hello there", target=" yo", method=method)
        assert a.scores.shape == (3, len(a.source_tokens)) and a.target_tokens == [" ", "y", "o"]
        b = TokenAttribution.load(a.with_marks(top_positive=[1]).save(tmp_path / f"{method}.safetensors"))
        assert torch.equal(torch.nan_to_num(a.scores), torch.nan_to_num(b.scores)) and b.marks == {"top_positive": [1]}
        assert b.method == method and b.target_positions == a.target_positions


def test_bad_input_errors(gpt2):
    with pytest.raises(InterpError, match="unknown attribution method"):
        attribute(gpt2, "hello", method="nope")
    with pytest.raises(InterpError, match="empty"):
        attribute(gpt2, "hello", target="")
    with pytest.raises(InterpError, match="vocabulary"):
        attribute(gpt2, "hello", target=10_000)
    with pytest.raises(InterpError, match="either"):
        attribute(gpt2, "hello", target=" a", generate=2)
    with pytest.raises(InterpError, match="baseline"):
        attribute(gpt2, "hello", method="integrated_gradients", baseline="nope")
    with pytest.raises(InterpError, match="sampler"):
        attribute(gpt2, "hello", sampler="nope")


def test_samplers_never_draw_special_tokens(gpt2):
    g = torch.Generator().manual_seed(0)
    x = gpt2.to_tokens("hello")[0]
    special = {gpt2.tokenizer.bos_token_id, gpt2.tokenizer.pad_token_id}
    for smp in [UniformSampler.for_model(gpt2), UnigramSampler.from_texts(gpt2, ["abc abc"])]:
        assert not set(smp.sample(x, 200, g).unique().tolist()) & special
    ms = ModelSampler(gpt2)
    out = ms.sample(x, 3, g)
    assert out.shape == (3, x.shape[0]) and torch.equal(out[0, 1:], out[1, 1:])


# ---- faithfulness -------------------------------------------------------------------------------------
def test_faithfulness_prefers_the_true_attribution(planted):
    """On the trigger model, the attribution that ranks the trigger first beats random importances on soft and hard
    comprehensiveness and sufficiency, and the reversed attribution (trigger last) is worse than random on all four:
    removing the trigger changes the prediction, removing other tokens barely does."""
    model, tid = planted
    a = attribute(model, "abcdqefghij", target=tid, method="occlusion")
    assert a.top(1)[0] == 5
    good = faithfulness(model, a, n_samples=4)
    bad = faithfulness(model, dataclasses.replace(a, scores=-a.scores), n_samples=4)
    for m in ["soft_ns", "soft_nc", "hard_sufficiency", "hard_comprehensiveness"]:
        assert good[f"{m}_vs_random"] > 0 > bad[f"{m}_vs_random"], (m, good, bad)
    assert len(good["per_target"]) == 1


def test_faithfulness_keep_first_leaves_the_first_position_out(planted, gpt2):
    """``keep_first=True``: the first position is never masked and takes no part in the ranking. So (1) its score
    cannot change any metric (bit for bit), while without the option ranking it first or last does change them; (2) the
    "all zeroed" reference S0 keeps it: it equals 1 - D(p with every other token embedding zeroed, p), computed here by
    hand; (3) on the trigger model the true attribution still beats random and the reversed one does not."""
    from interp.attribution.faithfulness import hellinger_like
    from interp.attribution.ig import embed_hook_name

    a = attribute(gpt2, "hello world, how are you", method="gradient_norm")
    first, last = (dataclasses.replace(a, scores=a.scores.clone().index_fill_(1, torch.tensor([0]), v)) for v in (1e3, -1e3))
    kept = [faithfulness(gpt2, x, n_samples=3, keep_first=True) for x in (first, last)]
    assert torch.equal(kept[0].values, kept[1].values) and kept[0].options["keep_first"] is True
    assert not torch.equal(faithfulness(gpt2, first, n_samples=3).values, faithfulness(gpt2, last, n_samples=3).values)

    x = a.sequence()[: a.target_positions[0]][None]

    def zero_but_first(act, hook):  # noqa: ARG001
        return torch.cat([act[:, :1], torch.zeros_like(act[:, 1:])], 1)

    with torch.no_grad():
        p = torch.softmax(gpt2(x)[0, -1].double(), -1)
        p0 = torch.softmax(gpt2.run_with_hooks(x, fwd_hooks=[(embed_hook_name(gpt2), zero_but_first)])[0, -1].double(), -1)
    s0 = kept[0].values[0, kept[0].metrics.index("s0")]
    torch.testing.assert_close(s0, 1 - hellinger_like(p0, p), rtol=0, atol=1e-5)

    model, tid = planted
    t = attribute(model, "abcdqefghij", target=tid, method="occlusion")
    good = faithfulness(model, t, n_samples=4, keep_first=True)
    bad = faithfulness(model, dataclasses.replace(t, scores=-t.scores), n_samples=4, keep_first=True)
    for m in ["soft_ns", "soft_nc", "hard_sufficiency", "hard_comprehensiveness"]:
        assert good[f"{m}_vs_random"] > 0 > bad[f"{m}_vs_random"], (m, good, bad)
