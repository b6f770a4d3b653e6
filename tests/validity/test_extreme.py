"""Extreme-token scan: streaming == naive, no false positives on random weights, planted sinks/activations found."""

from __future__ import annotations

import math

import pytest
import torch

from interp.errors import InterpError
from interp.extreme import ExtremeTokenReport, Thresholds, scan
from interp.extreme.naive import naive_scan
from interp.extreme.report import is_massive

TEXTS = [
    "hello world, this is a small test of the scan.",
    "short one",
    "another text that is a bit longer than the rest of them, with commas, and more words!",
    "the cat sat on the mat. the dog sat on the log.",
    "a b c d e f g h i j k l m n o p",
]
FIELDS = ["sink_score", "gu_share", "value_first", "value_other", "resid_first", "resid_other_max", "resid_other_median",
          "top_abs", "median_abs"]


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_streaming_equals_naive_full_cache(random_models, family):
    model = random_models[family]
    for batch_size in (1, 3):  # padding and length-sorted batching must not move any number
        a = scan(model, TEXTS, batch_size=batch_size, progress=False)
        b = naive_scan(model, TEXTS)
        for f in FIELDS:
            # float32 activations reduced in float64 on both sides: only summation order differs (~1e-7 relative)
            assert torch.allclose(getattr(a, f), getattr(b, f), rtol=1e-5, atol=1e-6), f
        assert a.uniform_sink == pytest.approx(b.uniform_sink)
        assert a.n_texts == b.n_texts == len(TEXTS) and a.n_tokens == b.n_tokens


@pytest.mark.parametrize("family", ["gpt2", "llama", "neox"])
def test_random_models_report_nothing(random_models, family):
    """Random weights give near-uniform attention and Gaussian-like residuals: no sink, drain, peak or massive activation."""
    r = scan(random_models[family], TEXTS * 2, batch_size=4, progress=False)
    assert r.sink_heads == []
    assert r.n_massive == 0 and r.massive == []
    assert r.drain_heads == [] and r.peak_layers == []
    assert (r.gu_share == 0).all()
    # the measured sink score sits at the uniform-attention baseline (random q.k are small): within 50% of it
    assert (r.sink_score - r.uniform_sink).abs().max() < 0.5 * r.uniform_sink


def test_planted_massive_activation_is_found(random_models):
    model = random_models["gpt2"]
    layer, dim, value = 1, 5, 5000.0

    def plant(x, hook):  # one residual dimension made huge at the first token, written into block 1's output
        x = x.clone()
        x[:, 0, dim] += value
        return x

    with model.hooks(fwd_hooks=[(f"blocks.{layer}.hook_mlp_out", plant)]):
        r = scan(model, TEXTS, batch_size=2, progress=False)
    assert r.n_massive == len(TEXTS)  # once per text: the model has 2 layers and the plant is in the last one
    assert {(e[0], e[2], e[3]) for e in r.massive} == {(layer, 0, dim)}
    assert sorted(e[1] for e in r.massive) == list(range(len(TEXTS)))
    assert all(abs(e[4]) > 1000 for e in r.massive)
    assert r.top_abs[layer] > 1000 and r.top_abs[0] < 100
    assert r.peak_layers == [layer]  # a 5000 entry also dominates the first token's norm
    clean = scan(model, TEXTS, batch_size=2, progress=False)
    assert clean.n_massive == 0


def test_planted_sink_head_and_gu_metric(random_models):
    """B-T8: a head giving 0.5 to key 0 counts at eps 0.3; uniform causal attention (alpha_0 = H_T / T) does not."""
    model = random_models["gpt2"]
    T = 64
    ids = torch.randint(0, 30, (3, T))
    ids[:, 0] = model.tokenizer.bos_token_id

    def plant(p, hook):
        p = p.clone()
        q = torch.arange(T)
        causal = (q[None] <= q[:, None]).to(p.dtype)
        uniform = causal / causal.sum(-1, keepdim=True)
        half = uniform * 0.5
        half[:, 0] += 0.5
        half[0, 0] = 1.0
        p[:, 0], p[:, 1] = half, uniform
        return p

    with model.hooks(fwd_hooks=[("blocks.0.attn.hook_pattern", plant)]):
        r = scan(model, ids, progress=False)
    harmonic = sum(1 / t for t in range(1, T + 1))
    assert r.gu_share[0, 0] == 1.0 and r.gu_share[0, 1] == 0.0
    assert (r.sink_heads and r.sink_heads[0] == (0, 0)) and (0, 1) not in r.sink_heads
    # uniform: mean over queries t >= 1 of 1/(t+1) is exactly the baseline (float32 pattern: 1e-6)
    assert r.sink_score[0, 1] == pytest.approx(r.uniform_sink, abs=1e-6)
    assert r.uniform_sink == pytest.approx((harmonic - 1) / (T - 1))
    assert r.sink_score[0, 0] == pytest.approx(0.5 + 0.5 * r.uniform_sink, abs=1e-6)
    assert harmonic / T == pytest.approx(0.0742, abs=1e-4)


def test_massive_rule_sun_thresholds():
    """B-T9: 500 vs median 0.1 is flagged; 150 vs median 1 is not (ratio); 99 vs median 0.01 is not (absolute)."""
    t = Thresholds()
    assert bool(is_massive(torch.tensor(500.0), 0.1, t))
    assert not bool(is_massive(torch.tensor(150.0), 1.0, t))
    assert not bool(is_massive(torch.tensor(99.0), 0.01, t))
    assert bool(is_massive(torch.tensor(-500.0), 0.1, t))  # the sign does not matter


def test_other_sink_tokens_found(random_models):
    """A head forced to attend to every '.' is reported as making '.' a sink token."""
    model = random_models["gpt2"]
    ids = model.to_tokens("ab. cd ef gh ij kl mn op qr st uv wx yz ab cd ef")
    dot = int(model.to_tokens(".")[0, -1])
    k = int((ids[0] == dot).nonzero()[0])

    def plant(p, hook):
        p = p.clone()
        p[:, 2, k:] = 0.0
        p[:, 2, k:, k] = 1.0
        return p

    with model.hooks(fwd_hooks=[("blocks.1.attn.hook_pattern", plant)]):
        r = scan(model, ids, progress=False)
    assert r.other_sinks[0][0] == "." and r.other_sinks[0][1] == 1 and r.other_sinks[0][3] == pytest.approx(1.0)


def test_report_roundtrip_and_errors(random_models, tmp_path):
    model = random_models["gpt2"]
    r = scan(model, "hello world", progress=False, thresholds=Thresholds(sink=0.9))
    back = ExtremeTokenReport.load(r.save(tmp_path / "x.safetensors"))
    assert torch.equal(back.sink_score, r.sink_score) and back.thresholds["sink"] == 0.9 and back.summary() == r.summary()
    assert "sink heads" in r._repr_html_()
    with pytest.raises(InterpError, match="no texts"):
        scan(model, [], progress=False)
    with pytest.raises(InterpError, match="empty"):
        scan(model, ["  "], progress=False)
    assert not math.isnan(float(r.value_other.sum()))
