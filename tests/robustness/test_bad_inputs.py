"""Bad input to the public API (issue 16): each case is one ``InterpError`` whose message names the problem,
never an ``IndexError`` / ``AttributeError`` / ``TypeError`` from deep inside, and never a silent wrong answer."""

from __future__ import annotations

import math

import pytest
import torch

from interp.attribution import attribute
from interp.errors import InterpError
from interp.extreme import scan
from interp.extreme.inputs import encode
from interp.lens import logit_lens
from interp.predict import predict
from interp.steering.data import ContrastExample
from interp.steering.evaluate import evaluate
from interp.steering.vectors import SteeringVectors

pytestmark = [pytest.mark.robustness, pytest.mark.usefixtures("one_thread_module")]

PROMPT = "one day mia found a key in the garden . then mia took the"


# ---- targets ---------------------------------------------------------------------------------------------
def test_lens_target_not_in_the_vocabulary_is_an_error_not_the_space_token(stories):
    with pytest.raises(InterpError, match=r"'zzzqqq' is not a token of this vocabulary.*single-token word or a token id"):
        logit_lens(stories, PROMPT, target="zzzqqq")


def test_lens_target_of_several_real_tokens_tracks_the_first_and_says_so(stories):
    r = logit_lens(stories, PROMPT, target="key garden")
    assert r.target == " key" and "first token" in r.target_note


@pytest.mark.parametrize("target", [3.5, True, [1, 2], {"a": 1}, b"key"])
def test_lens_target_of_a_wrong_type(stories, target):
    with pytest.raises(InterpError, match="target must be a word or a token id"):
        logit_lens(stories, PROMPT, target=target)


@pytest.mark.parametrize("target, match", [(3.5, "target must be text, a token id"), ([1.5], "whole number"),
                                           ([], "target list is empty"), (10**6, "not in the model's vocabulary"),
                                           ([-1], "not in the model's vocabulary"), (object(), "target must be text")])
def test_attribution_target_of_a_wrong_type_or_value(stories, target, match):
    with pytest.raises(InterpError, match=match):
        attribute(stories, PROMPT, target, method="attention_last_layer")


# ---- top_k and other numbers --------------------------------------------------------------------------------
@pytest.mark.parametrize("top_k, match", [("5", "top_k must be a whole number"), (2.5, "top_k must be a whole number"),
                                          (0, "top_k must be at least 1"), (True, "whole number"), (None, "whole number")])
def test_top_k(stories, top_k, match):
    with pytest.raises(InterpError, match=match):
        logit_lens(stories, PROMPT, top_k=top_k)
    with pytest.raises(InterpError, match=match):
        predict(stories, PROMPT, top_k=top_k)


def test_top_k_as_a_numpy_or_tensor_integer_still_works(stories):
    import numpy as np

    assert logit_lens(stories, PROMPT, top_k=np.int64(3)).top_ids.shape[-1] == 3
    assert len(predict(stories, PROMPT, top_k=torch.tensor(2)).next_tokens) == 2


# ---- token-id prompts -------------------------------------------------------------------------------------------
BAD_IDS = [
    (torch.tensor([0, 5, 10**6]), "outside the vocabulary"),
    (torch.tensor([0, -3, 5]), "outside the vocabulary"),
    (torch.tensor([], dtype=torch.long), "has 0 tokens"),
    (torch.tensor([0.0, 5.0]), "integer tensor"),
    (torch.tensor([[0, 5], [0, 6]]), "shape"),
    (torch.zeros(1, 1, 3, dtype=torch.long), "shape"),
    (torch.tensor(5), "shape"),
    (None, "no prompt given"),
    ([0, 5, 7], "text or a token-id tensor"),
]


@pytest.mark.parametrize("ids, match", BAD_IDS)
def test_token_id_prompts_lens_predict_attribution(stories, ids, match):
    with pytest.raises(InterpError, match=match):
        logit_lens(stories, ids)
    with pytest.raises(InterpError, match=match):
        predict(stories, ids)
    with pytest.raises(InterpError, match=match):
        attribute(stories, ids, method="attention_last_layer")


def test_token_id_prompt_longer_than_the_context(stories):
    ids = torch.zeros(stories.cfg.n_ctx + 1, dtype=torch.long)
    with pytest.raises(InterpError, match="context"):
        logit_lens(stories, ids)


def test_valid_token_id_prompts_still_work(stories):
    ids = stories.to_tokens(PROMPT)
    assert logit_lens(stories, ids[0]).tokens == logit_lens(stories, PROMPT).tokens
    assert attribute(stories, ids, method="attention_last_layer").scores.shape[-1] == ids.shape[-1]


@pytest.mark.parametrize("texts, match", [(None, "got NoneType"), (5, "got int"), ({"a": 1}, "got dict"),
                                          (torch.tensor([[0, 5, 10**6]]), "outside the vocabulary"),
                                          (torch.tensor([[0.0, 5.0, 6.0]]), "integer tensor"),
                                          ([torch.tensor([0, -1, 4])], "outside the vocabulary"),
                                          ([PROMPT, None], "text 1 is a NoneType"), ([], "no texts given")])
def test_scan_inputs(stories, texts, match):
    with pytest.raises(InterpError, match=match):
        scan(stories, texts, progress=False)


@pytest.mark.parametrize("max_len", [0, 2.5, "8"])
def test_scan_max_len(stories, max_len):
    with pytest.raises(InterpError, match="max_len"):
        encode(stories, [PROMPT], max_len)


# ---- attribution options ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, options, match", [
    ("random", {"seed": "abc"}, "seed"),
    ("random", {"seed": -1}, "seed must be at least 0"),
    ("reagent", {"seed": 1.5}, "seed"),
    ("reagent", {"num_probes": "16"}, "num_probes"),
    ("reagent", {"num_probes": 0}, "num_probes must be at least 1"),
    ("reagent", {"replace_ratio": "0.3"}, "replace_ratio"),
    ("reagent", {"replace_ratio": 1.5}, "replace_ratio must be at most 1"),
    ("reagent", {"replace_ratio": math.nan}, "replace_ratio"),
    ("reagent", {"max_steps": 10.5}, "max_steps"),
    ("reagent", {"fix_bos": "yes"}, "fix_bos"),
    ("reagent", {"sampler": 5}, "sampler must be a name"),
    ("reagent", {"sampler": "nope"}, "unknown ReAGent sampler"),
    ("reagent", {"bogus_option": 1}, "attribution method .reagent. has no option bogus_option"),
    ("integrated_gradients", {"max_points": "50"}, "max_points"),
    ("integrated_gradients", {"max_points": 2.5}, "max_points"),
    ("integrated_gradients", {"tolerance": math.inf}, "tolerance"),
    ("integrated_gradients", {"objective": 3}, "objective"),
    ("occlusion", {"replacement": 10**6}, "outside the vocabulary"),
    ("occlusion", {"replacement": "mask"}, "replacement must be 'delete', 'pad' or a token id"),
    ("input_x_gradient", {"objective": "loss"}, "unknown objective"),
])
def test_attribution_options_of_the_wrong_type(stories, method, options, match):
    with pytest.raises(InterpError, match=match):
        attribute(stories, PROMPT, method=method, **options)


@pytest.mark.parametrize("method", [None, 3, "nope"])
def test_attribution_unknown_method(stories, method):
    with pytest.raises(InterpError, match="unknown attribution method"):
        attribute(stories, PROMPT, method=method)


@pytest.mark.parametrize("generate", ["3", 1.5, 0, -2])
def test_attribution_generate(stories, generate):
    with pytest.raises(InterpError, match="generate"):
        attribute(stories, PROMPT, method="random", generate=generate)


# ---- steering strength ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vectors(stories):
    g = torch.Generator().manual_seed(0)
    v = torch.randn(2, stories.cfg.d_model, generator=g)
    return SteeringVectors(v / v.norm(dim=-1, keepdim=True), [0, 1], "grains", "stories")


@pytest.mark.parametrize("alpha", [math.nan, math.inf, -math.inf, "2", None, True])
def test_non_finite_or_non_numeric_alpha_is_rejected(stories, vectors, alpha):
    with pytest.raises(InterpError, match="alpha"):
        with vectors.steer(stories, alpha):
            pass


def test_huge_alpha_keeps_norms_and_finite_logits(stories, vectors):
    tokens = stories.to_tokens(PROMPT)
    with vectors.steer(stories, 1e300):
        logits = stories(tokens)
        out = stories.generate(tokens, max_new_tokens=4, do_sample=False, verbose=False, stop_at_eos=False)
    assert torch.isfinite(logits).all()
    new = out[0, tokens.shape[1]:].tolist()
    assert len(new) == 4 and new != [stories.tokenizer.bos_token_id] * 4
    with vectors.steer(stories, 1e30):  # the limit: the direction of v alone, rescaled to each token's norm
        limit = stories(tokens)
    assert torch.allclose(logits, limit, atol=1e-4)


def test_huge_alpha_without_renormalising_is_an_error(stories, vectors):
    with pytest.raises(InterpError, match="overflows"):
        with vectors.steer(stories, 1e300, norm_mode="none"):
            stories(stories.to_tokens(PROMPT))


@pytest.mark.parametrize("alphas, match", [([math.nan], "alpha"), ([1.0, math.inf], "alpha"), ("1", "list of numbers"),
                                           (3.0, "list of numbers")])
def test_evaluate_rejects_bad_alphas(stories, vectors, alphas, match):
    ex = [ContrastExample(PROMPT, " key", " door")]
    with pytest.raises(InterpError, match=match):
        evaluate(stories, vectors, ex, alphas=alphas, fluency_texts=[PROMPT], progress=False)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, "8"])
def test_scan_batch_size(stories, batch_size):
    with pytest.raises(InterpError, match="batch_size"):
        scan(stories, ["mia went to the park"], batch_size=batch_size, progress=False)


def test_head_activity_domains_must_be_a_dict(stories):
    from interp.extreme.activity import head_activity

    with pytest.raises(InterpError, match="domains must be a dict"):
        head_activity(stories, ["mia went to the park"], progress=False)
    with pytest.raises(InterpError, match="batch_size"):
        head_activity(stories, {"a": ["mia went to the park"]}, batch_size=0, progress=False)


@pytest.mark.parametrize("method", ["gradient_norm", "input_x_gradient", "attention_last_layer", "occlusion",
                                    "integrated_gradients", "random"])
def test_misspelt_method_option_is_an_error(stories, method):
    # n_step for n_steps used to be swallowed by **_ and silently ignored
    with pytest.raises(InterpError, match="has no option n_step"):
        attribute(stories, "mia went to the", method=method, n_step=2)
