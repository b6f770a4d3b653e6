"""Tuned lens on a random-weight model: identity at init, training lowers held-out KL, file round trip, errors."""

from __future__ import annotations

import random

import pytest
import torch

from interp.errors import InterpError
from interp.lens import TunedLens, heldout_kl, logit_lens
from interp.testing import random_model

rng = random.Random(1)
TRAIN = ["".join(rng.choice("abcdefghij .") for _ in range(rng.randrange(20, 50))) for _ in range(60)]
HELD = ["".join(rng.choice("abcdefghij .") for _ in range(rng.randrange(20, 50))) for _ in range(20)]


@pytest.fixture(scope="module")
def model():
    # (random_model seeds its weights: seed=0)
    return random_model("llama", n_layers=3)


@pytest.fixture(scope="module")
def trained(model):
    torch.manual_seed(0)
    return TunedLens.train(model, TRAIN, steps=20, batch_size=8, lr=3e-3, progress=False)


def test_untrained_lens_is_the_logit_lens_bit_for_bit(model):
    plain = logit_lens(model, "abc def", target="a", keep_logprobs=True)
    tuned = logit_lens(model, "abc def", target="a", keep_logprobs=True, lens=TunedLens.for_model(model))
    assert tuned.lens == "tuned" and plain.lens == "logit"
    assert torch.equal(plain.logprobs, tuned.logprobs) and torch.equal(plain.kl, tuned.kl)


def test_training_lowers_heldout_kl(model, trained):
    """On held-out texts the trained lens is closer to the final distribution than the logit lens at every
    translated layer; the final row is untouched (KL 0 up to float error)."""
    logit, tuned = heldout_kl(model, HELD), heldout_kl(model, HELD, trained)
    assert torch.all(tuned[:-1] < logit[:-1]), (logit, tuned)
    assert logit[-1] < 1e-6 and tuned[-1] < 1e-6
    assert trained.info["steps"] == 20 and trained.info["final_mean_kl"] >= 0


def test_save_load_roundtrip_and_model_check(model, trained, tmp_path):
    path = trained.save(tmp_path / "lens")
    back = TunedLens.load(path, model)
    a = logit_lens(model, "hij", lens=trained, keep_logprobs=True)
    b = logit_lens(model, "hij", lens=back, keep_logprobs=True)
    assert torch.equal(a.logprobs, b.logprobs)
    other = random_model("llama", n_layers=3, seed=5)
    with pytest.raises(InterpError, match="different final-norm/unembedding"):
        TunedLens.load(path, other)
    with pytest.raises(InterpError, match="3 layers"):
        logit_lens(random_model("gpt2", n_layers=2), "abc", lens=trained)
    with pytest.raises(InterpError, match="not a tuned-lens folder"):
        TunedLens.load(tmp_path / "missing")


def test_module_mode_and_errors(model, trained):
    assert trained.train(False) is trained and not trained.training  # nn.Module.train still works on instances
    with pytest.raises(InterpError, match="resid_pre"):
        logit_lens(model, "abc", lens=trained, incl_mid=True)
    with pytest.raises(InterpError, match="optimizer"):
        TunedLens.train(model, TRAIN[:2], steps=1, optimizer="lbfgs", progress=False)
    with pytest.raises(InterpError, match="empty"):
        TunedLens.train(model, [""], steps=1, progress=False)
    sgd = TunedLens.train(model, TRAIN, steps=3, optimizer="sgd", lr=0.1, progress=False)
    assert any(p.abs().sum() > 0 for p in sgd.parameters())
