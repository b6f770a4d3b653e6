"""Options of the public entry points (issue 15, item 3): a misspelt option raises ``InterpError`` naming it and the
valid ones; an option of the wrong type or out of range raises one naming the option and what to give. Every check
runs before any work, so these tests never train, attribute or build anything."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch

from interp.attribution import attribute
from interp.attribution.registry import METHODS, SETTINGS, method_names
from interp.attribution.samplers import make_sampler
from interp.attribution.truth import TruthPrompt, truth_rates
from interp.errors import InterpError
from interp.lens.latent import LatentIndex
from interp.subnetworks.train import find_bigram_subnetwork, find_pruned_subnetwork, train_mask

pytestmark = [pytest.mark.robustness, pytest.mark.usefixtures("one_thread_module")]

PROMPT = "mia went to the"
TEXTS = ["mia went to the park .", "tom found a key ."]

# per method: (a misspelt option, a mistyped or out-of-range option, what the message must say about it)
BAD = {
    "integrated_gradients": [({"max_point": 8}, {"max_points": "ten"}, "max_points must be a whole number \\(at least 1\\), got str 'ten'"),
                             ({"baseine": "zero"}, {"max_points": 2.5}, "max_points must be .*, got float 2.5"),
                             ({"tolerence": 0.1}, {"max_points": -4}, "max_points must be at least 1, got -4"),
                             ({"reductoin": "l2"}, {"reduction": "mean"}, "unknown per-token reduction 'mean'"),
                             ({"objectiv": "prob"}, {"objective": ["prob"]}, "unknown objective \\[.prob.\\]"),
                             ({"rules": "riemann_trapezoid"}, {"tolerance": -0.5}, "tolerance must be at least 0.0")],
    "attention_ig": [({"max_point": 10}, {"max_points": 0}, "max_points must be at least 1, got 0"),
                     ({"keep_bo": True}, {"keep_bos": "no"}, "keep_bos must be True or False, got str 'no'")],
    "input_x_gradient": [({"objectve": "prob"}, {"objective": ["logprob"]}, "unknown objective \\[.logprob.\\]")],
    "gradient_norm": [({"objectives": "prob"}, {"objective": 1.5}, "unknown objective 1.5; choose one of logprob, prob, logit")],
    "attention_last_layer": [({"layer": 0}, {"n_steps": 3}, "has no option n_steps: its options are none")],
    "occlusion": [({"max_row": 4}, {"max_rows": 0}, "max_rows must be at least 1, got 0"),
                  ({"replace": 0}, {"replacement": 2.5}, "replacement must be a string or a whole number, got float 2.5"),
                  ({"measure": "prob"}, {"objective": "entropy"}, "unknown objective 'entropy'")],
    "random": [({"sed": 1}, {"seed": 1.5}, "seed must be .*, got float 1.5"),
               ({"seeds": 1}, {"seed": -1}, "seed must be at least 0, got -1")],
    "reagent": [({"num_probe": 4}, {"num_probes": -3}, "num_probes must be at least 1, got -3"),
                ({"replace_ration": 0.2}, {"replace_ratio": 0.0}, "replace_ratio must be above 0.0"),
                ({"max_step": 10}, {"max_steps": 10.0}, "max_steps must be a whole number \\(at least 1\\), got float 10.0"),
                ({"samplr": "uniform"}, {"sampler_texts": TEXTS}, "sampler_texts is only used by sampler='unigram'"),
                ({"progres": None}, {"stop_top_k": 0}, "stop_top_k must be at least 1, got 0"),
                ({"min_step": 1}, {"min_steps": -1}, "min_steps must be at least 0"),
                ({"fixbos": True}, {"fix_bos": "yes"}, "fix_bos must be True or False, got str 'yes'")],
}


def test_every_registered_method_has_cases_and_declares_its_options():
    assert set(BAD) == set(method_names())
    for name in METHODS:
        cls = SETTINGS[name]
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, f"{name}'s settings are not frozen"
        hints = typing.get_type_hints(cls, include_extras=True)  # resolvable, or the type checks would be skipped
        assert set(cls.defaults()) <= set(hints)


@pytest.mark.parametrize("method, misspelt, mistyped, match",
                         [(m, *case) for m, cases in BAD.items() for case in cases],
                         ids=lambda v: v if isinstance(v, str) and v in BAD else None)
def test_attribute_refuses_misspelt_and_mistyped_options(stories, method, misspelt, mistyped, match):
    (wrong,) = misspelt
    with pytest.raises(InterpError, match=rf"attribution method '{method}' has no option {wrong}\b.*its options are") as e:
        attribute(stories, PROMPT, method=method, **misspelt)
    for option in SETTINGS[method].defaults():
        assert option in str(e.value)
    with pytest.raises(InterpError, match=match):
        attribute(stories, PROMPT, method=method, **mistyped)


def test_objective_and_progress_are_checked_beside_the_settings(stories):
    """``objective`` is refused by the methods that take none, and ``progress`` must be a function."""
    from interp.attribution import Contrast

    for method in ("reagent", "random", "attention_last_layer"):
        with pytest.raises(InterpError, match=f"attribution method '{method}' takes no objective"):
            attribute(stories, PROMPT, method=method, objective="prob")
    with pytest.raises(InterpError, match="that text is 2 tokens; give one token"):
        attribute(stories, PROMPT, method="gradient_norm", objective=Contrast(" the park"))
    with pytest.raises(InterpError, match="give a token id in 0"):
        attribute(stories, PROMPT, method="gradient_norm", objective=Contrast(10**9))
    with pytest.raises(InterpError, match="progress must be a function or None, got int 3"):
        attribute(stories, PROMPT, method="reagent", progress=3)


def test_a_misspelt_option_gets_the_closest_name(stories):
    with pytest.raises(InterpError, match=r"has no option max_point \(did you mean max_points\?\)"):
        attribute(stories, PROMPT, method="integrated_gradients", max_point=8)


def test_numpy_and_tensor_numbers_are_still_options(stories):
    import numpy as np

    a = attribute(stories, PROMPT, method="random", seed=np.int64(3))
    b = attribute(stories, PROMPT, method="random", seed=torch.tensor(3))
    assert torch.equal(a.scores, b.scores)


def test_truth_rates_forwards_to_attributes_checks(stories):
    tokens = stories.to_tokens(PROMPT)[0]
    prompts = [TruthPrompt(tokens, int(tokens[-1]), (1,), "fact", PROMPT)]
    with pytest.raises(InterpError, match="has no option sed"):
        truth_rates(stories, prompts, "random", sed=1)


# ---- make_sampler -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, match", [
    ({"sampler_text": TEXTS}, r"make_sampler\(\) has no option sampler_text \(did you mean sampler_texts\?\): its options are "
                              r"sampler_texts, mlm, mlm_tokenizer, trust_remote_code"),
    ({"trust_remote_code": "yes"}, "trust_remote_code must be True or False, got str 'yes'"),
    ({"mlm": "/nowhere"}, "mlm is only used by sampler='mlm'"),
])
def test_make_sampler_options(stories, options, match):
    with pytest.raises(InterpError, match=match):
        make_sampler(stories, "uniform", **options)


@pytest.mark.parametrize("texts", [5, "one text", ["ok", 3]])
def test_unigram_sampler_texts_must_be_strings(stories, texts):
    with pytest.raises(InterpError, match="sampler_texts must be a list of strings"):
        make_sampler(stories, "unigram", sampler_texts=texts)


# ---- subnetworks ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [find_bigram_subnetwork, find_pruned_subnetwork])
@pytest.mark.parametrize("options, match", [
    ({"step": 3}, r"has no option step \(did you mean steps\?\): its options are lam, steps, lr, maskable"),
    ({"batchsize": 4}, r"has no option batchsize .*batch_size"),
    ({"target": "model"}, "has no option target"),
    ({"steps": "3"}, "steps must be a whole number \\(at least 1\\), got str '3'"),
    ({"batch_size": 0}, "batch_size must be at least 1, got 0"),
    ({"lam": -1.0}, "lam must be at least 0.0"),
    ({"seed": 0.5}, "seed must be .*, got float 0.5"),
    ({"progress": "no"}, "progress must be True or False, got str 'no'"),
])
def test_subnetwork_options(stories, fn, options, match):
    with pytest.raises(InterpError, match=rf"{fn.__name__}\(\) .*{match}" if "no option" in match else match):
        fn(stories, TEXTS, **options)


def test_bigram_subnetwork_lists_its_own_and_the_trainers_options(stories):
    with pytest.raises(InterpError, match=r"its options are lam, steps, lr, maskable, table, max_len, batch_size, beta_growth, "
                                          r"stop_fraction, seed, progress, callback$"):
        find_bigram_subnetwork(stories, TEXTS, lamda=1.0)


def test_train_mask_options(stories):
    seqs = [torch.tensor([0, 1, 2])]
    with pytest.raises(InterpError, match=r"train_mask\(\) has no option lamda \(did you mean lam\?\)"):
        train_mask(stories, seqs, lambda *a: None, target="bigram", lamda=1.0)
    with pytest.raises(InterpError, match="steps must be at least 1"):
        train_mask(stories, seqs, lambda *a: None, target="bigram", steps=0)


# ---- LatentIndex.empty ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, match", [
    ({"max_per_tokn": 3}, r"LatentIndex.empty\(\) has no option max_per_tokn \(did you mean max_per_token\?\): its options "
                          r"are dtype, max_per_token, min_pos, dedup"),
    ({"vocab": []}, "has no option vocab"),
    ({"min_pos": "2"}, "min_pos must be a whole number, got str '2'"),
    ({"dedup": 1}, "dedup must be True or False, got int 1"),
])
def test_latent_index_empty_options(stories, options, match):
    with pytest.raises(InterpError, match=match):
        LatentIndex.empty(stories, **options)


# ---- build_report ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options, match", [
    ({"subnetwrk": "sub.safetensors"}, r"build_report\(\) has no option subnetwrk \(did you mean subnetwork\?\): its options "
                                       r"are .*lens_target.*subnetwork"),
    ({"n_steps": "20"}, "build_report\\(\\) option n_steps must be a whole number, got str '20'"),
    ({"alphas": 2.0}, "option alphas must be .*, got float 2.0"),
])
def test_build_report_refuses_an_option_no_section_takes(stories, options, match):
    from interp.report import build_report

    with pytest.raises(InterpError, match=match):
        build_report(stories, PROMPT, progress=False, **options)
