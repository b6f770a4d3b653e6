"""Property-based tests of the public entry points (issue 16): for prompts of arbitrary unicode and length, token-id
tensors of any shape and value, and option values of any type, each call either returns a valid result with no NaN
where a number is promised, or raises ``InterpError`` with a message; never another exception type."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interp.attribution import attribute
from interp.errors import InterpError
from interp.extreme import scan
from interp.lens import logit_lens
from interp.predict import predict
from interp.steering.vectors import SteeringVectors

pytestmark = [pytest.mark.robustness, pytest.mark.usefixtures("one_thread_module")]

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow])
prompts = st.text(max_size=40) | st.text(alphabet=" mia found a key .", min_size=1, max_size=60) | st.just(" " * 3)
anything = (st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=8)
            | st.lists(st.integers(-5, 700), max_size=3) | st.binary(max_size=4))


def _ids(draw_shape, draw_values):
    return st.builds(lambda shape, vals: torch.tensor(vals[: math.prod(shape)] + [0] * (math.prod(shape) - len(vals)),
                                                      dtype=torch.long).reshape(shape), draw_shape, draw_values)


token_tensors = _ids(st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
                     st.lists(st.integers(-3, 700), max_size=40)) | \
    st.lists(st.floats(-1, 700) | st.just(math.nan), max_size=6).map(lambda v: torch.tensor(v, dtype=torch.float32))


def _finite(t: torch.Tensor | None) -> bool:
    return t is None or bool(torch.isfinite(t.float()).all())


def _call(fn):
    """Run ``fn``; returns its result, or None after an ``InterpError`` with a message (any other exception fails)."""
    try:
        return fn()
    except InterpError as e:
        assert str(e).strip(), "an InterpError without a message"
        return None


@SETTINGS
@given(prompt=prompts)
def test_property_prompts_lens_and_predict(stories, prompt):
    r = _call(lambda: logit_lens(stories, prompt, top_k=3))
    if r is not None:
        assert _finite(r.entropy) and _finite(r.kl) and _finite(r.top_probs) and len(r.tokens) == r.entropy.shape[1]
    p = _call(lambda: predict(stories, prompt))
    if p is not None:
        assert _finite(p.surprisal) and _finite(p.next_probs)
    assert (r is None) == (p is None)  # the same prompt check in both


@SETTINGS
@given(prompt=prompts, target=st.none() | st.text(max_size=6) | st.integers(-5, 700))
def test_property_prompts_and_targets_attribution(stories, prompt, target):
    a = _call(lambda: attribute(stories, prompt, target, method="attention_last_layer"))
    if a is not None:
        scores = a.scores
        for i, p in enumerate(a.target_positions):
            assert _finite(scores[i, :p])


@SETTINGS
@given(texts=st.lists(prompts, min_size=0, max_size=3) | prompts)
def test_property_prompts_scan(stories, texts):
    r = _call(lambda: scan(stories, texts, progress=False))
    if r is not None:
        assert all(_finite(v) for v in vars(r).values() if isinstance(v, torch.Tensor) and v.is_floating_point()
                   and v.numel() and not torch.isnan(v).all())


@SETTINGS
@given(ids=token_tensors)
def test_property_token_id_tensors(stories, ids):
    r = _call(lambda: logit_lens(stories, ids, top_k=2))
    if r is not None:
        assert _finite(r.entropy) and r.entropy.shape[1] == ids.numel()
    a = _call(lambda: attribute(stories, ids, method="attention_last_layer"))
    assert (r is None) == (a is None) or ids.numel() + 1 > stories.cfg.n_ctx
    _call(lambda: scan(stories, ids, progress=False))


@SETTINGS
@given(top_k=anything, seed=anything)
def test_property_option_values_of_any_type(stories, top_k, seed):
    r = _call(lambda: logit_lens(stories, "mia found a key", top_k=top_k))
    if r is not None:
        assert r.top_ids.shape[-1] == min(int(top_k), stories.cfg.d_vocab)
    a = _call(lambda: attribute(stories, "mia found a key", method="random", seed=seed))
    if a is not None:
        assert _finite(a.scores[0, : a.target_positions[0]])


@SETTINGS
@given(alpha=anything | st.floats(min_value=-1e308, max_value=1e308))
def test_property_steering_alpha_of_any_value(stories, alpha):
    v = torch.ones(1, stories.cfg.d_model) / stories.cfg.d_model ** 0.5
    vec = SteeringVectors(v, [0], "grains", "stories")
    tokens = stories.to_tokens("mia found a key")

    def run():
        with vec.steer(stories, alpha):
            return stories(tokens)

    logits = _call(run)
    if logits is not None:
        assert _finite(logits)
