"""The lean last-position forward and ReAGent's call planning: equal numbers, safe fallbacks, same results.

Reference for every comparison: the bridge's ``logits_to_keep=1`` forward (``LastLogits(lean=False)``, the default).
Tolerance 1e-4 relative to the largest logit: both compute in float32 and differ only in the order of
additions (fused vs split projections, last-position-only final block); measured differences are 6e-6 on
``stories`` (logits up to 13) and 2e-7 on the random models, so 1e-4 leaves room for other BLAS kernels
without letting a wrong formula (errors of order 1e-1 and more) through.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from interp.attribution import attribute
from interp.attribution import forward as forward_mod
from interp.attribution.forward import LastLogits
from interp.attribution.lean import lean_forward
from interp.attribution.reagent import _window, reagent_scores
from interp.attribution.samplers import UniformSampler
from interp.errors import InterpError
from interp.models import load_model
from interp.subnetworks.masking import swap_weights
from interp.testing import random_model, random_model_dir


def _variant(family: str, **config) -> object:
    """A random-weight bridge of ``family`` with ``config`` entries changed in its config.json."""
    d = random_model_dir(family, seed=1)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, **config}))
    return load_model(d, device="cpu")


def _close(got: torch.Tensor, ref: torch.Tensor) -> bool:
    return got.shape == ref.shape and bool(torch.allclose(got, ref, rtol=0, atol=1e-4 * max(1.0, float(ref.abs().max()))))


def _rows(model, n: int, T: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.cfg.d_vocab, (n, T), generator=g)


@pytest.mark.parametrize("name", ["stories", "bb", "gpt2", "llama", "neox", "neox-sequential"])
def test_lean_forward_equals_hugging_face(name, stories, bb, random_models):
    if name == "neox-sequential":
        model = _variant("neox", use_parallel_residual=False)
    else:
        model = {"stories": stories, "bb": bb}.get(name) or random_models[name]
    lean = lean_forward(model)
    assert lean is not None
    hf = LastLogits(model, lean=False)
    for n, T in [(1, 1), (3, 7), (40, 24), (200, 13)]:  # 200 rows run in several row blocks
        x = _rows(model, n, T, seed=n)
        assert _close(lean(x), hf(x)), (name, n, T, float((lean(x) - hf(x)).abs().max()))
    fast = LastLogits(model, lean=True)
    x = _rows(model, 9, 11)
    assert _close(fast(x), hf(x)) and fast.path == "lean"


def test_uncovered_models_use_hugging_face():
    """ReLU attention (zoo bb-relu) and GPT-2's scale-by-inverse-layer-index option have no lean forward."""
    relu = load_model("data/models/bb-relu", device="cpu")
    for model in (relu, _variant("gpt2", scale_attn_by_inverse_layer_idx=True)):
        assert lean_forward(model) is None
        f = LastLogits(model, lean=True)
        x = _rows(model, 4, 9)
        assert f.path == "last" and torch.equal(f(x), LastLogits(model, lean=False)(x))


def test_hooks_on_the_bridge_are_respected(stories):
    """With a hook attached, LastLogits runs the hooked forward (the lean one would skip the hook)."""
    x = _rows(stories, 5, 12)
    plain = LastLogits(stories, lean=True)(x)

    def kill(resid, hook):  # noqa: ARG001
        return torch.zeros_like(resid)

    with stories.hooks(fwd_hooks=[("blocks.2.hook_resid_pre", kill)]):
        f = LastLogits(stories, lean=True)
        assert f.path == "last"
        hooked = f(x)
        with torch.no_grad():
            expected = stories(x)[:, -1]
    assert _close(hooked, expected) and not _close(hooked, plain)
    assert LastLogits(stories, lean=True).path == "lean"  # hook gone, lean again


def test_plain_torch_hooks_are_respected(stories):
    """A forward hook on a Hugging Face module inside the bridge also sends LastLogits to the hooked forward."""
    x = _rows(stories, 4, 10)
    mlp = stories.original_model.transformer.h[1]._original_component.mlp
    handle = mlp.register_forward_hook(lambda mod, inp, out: out * 0)
    try:
        f = LastLogits(stories, lean=True)
        assert f.path == "last"
        with torch.no_grad():
            assert _close(f(x), stories(x)[:, -1])
    finally:
        handle.remove()
    assert LastLogits(stories, lean=True).path == "lean"


def test_lean_reads_swapped_weights(stories):
    """Weights swapped in (subnetwork masks) or edited are read at every call, not cached."""
    name = "transformer.h.1._original_component.mlp._original_component.c_fc._original_component.weight"
    w = stories.original_model.get_parameter(name)
    x = _rows(stories, 6, 10)
    before = LastLogits(stories, lean=True)(x)
    with swap_weights(stories.original_model, {name: torch.zeros_like(w)}):
        lean, hf = LastLogits(stories, lean=True)(x), LastLogits(stories, lean=False)(x)
    assert _close(lean, hf) and not _close(lean, before)


def test_lean_mismatch_switches_it_off(monkeypatch):
    """A lean forward that disagrees with Hugging Face on the first rows is dropped for that model, with a warning."""
    model = random_model("gpt2", seed=3)
    real = lean_forward(model)
    monkeypatch.setattr(forward_mod, "lean_forward", lambda m: (lambda ids: real(ids) + 1.0))
    x = _rows(model, 6, 8)
    with pytest.warns(UserWarning, match="lean last-position forward differs"):
        out = LastLogits(model, lean=True)(x)
    assert _close(out, LastLogits(model, lean=False)(x))
    assert LastLogits(model, lean=True).path == "last"  # remembered for the model


def test_cost_ratio_fit():
    """cost_ratio() is c0 / c1 of secs = c0 + c1 * rows, with a prior until two call sizes were timed."""
    f = LastLogits(random_model("gpt2"), lean=True)
    assert f.cost_ratio() == 2.0
    for rows in (1, 11, 21, 5):
        f._time(rows, 0.002 + 0.001 * rows)
    assert abs(f.cost_ratio() - 2.0) < 1e-6
    f2 = LastLogits(f.model, lean=True)
    for rows in (1, 11):
        f2._time(rows, 0.030 + 0.001 * rows)
    assert abs(f2.cost_ratio() - 30.0) < 1e-6


def test_window_grows_with_call_cost_and_shrinks_with_live_probes():
    assert _window(16, 0.1, 2.0, 64) == 1  # CPU, small model, all probes live: one step at a time
    assert _window(1, 0.1, 2.0, 64) > _window(16, 0.1, 2.0, 64)
    assert _window(16, 0.1, 256.0, 64) > 5  # a GPU: run many steps per call
    assert _window(1, 1e-6, 1e6, 64) == 64  # capped


def test_every_schedule_gives_the_reference_numbers(stories):
    """Stop steps equal and scores within 1e-6 for the reference loop, fixed windows and the planned default,
    with the lean and the Hugging Face forward (the draws are per (seed, step); only float32 rounding of a row
    in batches of different sizes differs)."""
    x = stories.to_tokens("mia went to the park . then tom went to the park . then mia took the")[0]
    target = int(LastLogits(stories, lean=True)(x[None]).argmax())
    smp = UniformSampler.for_model(stories)
    ref = reagent_scores(LastLogits(stories, lean=False), x, target, smp, seed=2, batched=False)
    assert ref.converged
    for opts, lean in [({}, True), ({"chunk": 1}, True), ({"chunk": 5}, True), ({}, False), ({"batched": False}, True)]:
        f = LastLogits(stories, lean=lean)
        run = reagent_scores(f, x, target, smp, seed=2, **opts)
        assert torch.equal(run.stopped_at, ref.stopped_at), opts
        assert torch.allclose(run.scores, ref.scores, atol=1e-6, rtol=0), opts
        if opts.get("batched", True):
            assert run.forward_calls < ref.forward_calls


def test_unknown_reagent_option_is_an_error(stories):
    with pytest.raises(InterpError, match="reagent. has no option chunks"):
        attribute(stories, "mia went to the", method="reagent", chunks=2)


def test_attribute_reports_the_forward_used(stories):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = attribute(stories, "mia went to the park . then mia", method="reagent", max_steps=50, lean=True)
        b = attribute(stories, "mia went to the park . then mia", method="reagent", max_steps=50)
    assert a.info["forward"] == "lean" and b.info["forward"] == "last"  # the bridge's logits_to_keep=1 path by default
    assert torch.allclose(a.row(), b.row(), atol=1e-6, rtol=0, equal_nan=True)
