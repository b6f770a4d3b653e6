"""Logit lens: last-layer identity with the model's output on three architecture families, batched == per-layer,
metric invariants, targets and errors."""

from __future__ import annotations

import math

import pytest
import torch

from interp.errors import InterpError
from interp.lens import LensResult, decode, layer_stride, logit_lens
from interp.lens.logit import lens_rows, residual_stack
from interp.models import to_tokens
from interp.testing import random_model

PROMPT = "the cat sat on a mat, then it ran."


@pytest.fixture(scope="module", params=["gpt2", "llama", "neox"])
def model(request):
    torch.manual_seed(0)
    return random_model(request.param, n_layers=3)


def test_last_layer_equals_model_logprobs(model):
    """The final_post row of the lens is the model's own log-probability at every position.

    Tolerance 1e-5: the same float32 ops (norm + unembed) run on the same tensors; only the log_softmax of a
    stacked vs unstacked tensor may differ in the last bits.
    """
    tokens = to_tokens(model, PROMPT)
    with torch.no_grad():
        want = torch.log_softmax(model(tokens).float(), -1)[0]
    r = logit_lens(model, PROMPT, keep_logprobs=True, top_k=3)
    assert r.layers[-1] == "final_post"
    torch.testing.assert_close(r.logprobs[-1], want, atol=1e-5, rtol=0)
    assert torch.equal(r.top_ids[-1, :, 0], want.argmax(-1))


def test_batched_equals_per_layer_loop(model):
    """All rows decoded in one call equal decoding each cached stream on its own (tolerance: float32 round-off)."""
    tokens = to_tokens(model, PROMPT)
    if "blocks.0.hook_resid_mid" not in model.hook_dict:  # parallel attention + MLP (NeoX): no mid stream
        with pytest.raises(InterpError, match="mid"):
            logit_lens(model, PROMPT, incl_mid=True)
        return
    r = logit_lens(model, PROMPT, keep_logprobs=True, incl_mid=True)
    _, cache = model.run_with_cache(tokens)
    assert r.layers == [label for label, _ in lens_rows(model, incl_mid=True)]
    assert len(r.layers) == 2 * model.cfg.n_layers + 1
    for i, (_, name) in enumerate(lens_rows(model, incl_mid=True)):
        with torch.no_grad():
            one = torch.log_softmax(model.unembed(model.ln_final(cache[name][0])).float(), -1)
        torch.testing.assert_close(r.logprobs[i], one, atol=1e-5, rtol=0)


def test_each_row_uses_its_own_norm(model):
    """Each row is decoded with the final norm recomputed on that row (not the final layer's cached scale,
    TransformerLens #1076): row 0 equals unembed(ln_final(resid_pre_0)) on its own."""
    tokens = to_tokens(model, PROMPT)
    _, stack = residual_stack(model, tokens)
    with torch.no_grad():
        own = torch.log_softmax(decode(model, stack[0]).float(), -1)
        r = logit_lens(model, PROMPT, keep_logprobs=True)
    torch.testing.assert_close(r.logprobs[0], own, atol=1e-5, rtol=0)


def test_metric_invariants(model):
    r = logit_lens(model, PROMPT, target="a", keep_logprobs=True, top_k=4)
    vocab = model.cfg.d_vocab
    assert torch.allclose(r.logprobs.exp().sum(-1), torch.ones(()), atol=1e-5)
    assert torch.all(r.kl >= 0) and r.kl[-1].abs().max() < 1e-6  # KL(final || final) = 0
    assert torch.all(r.entropy >= -1e-6) and torch.all(r.entropy <= math.log(vocab) + 1e-5)
    assert torch.all(r.target_rank >= 1) and torch.all(r.target_rank <= vocab)
    assert torch.equal(r.target_rank == 1, r.top_ids[..., 0] == r.target_id)
    assert torch.all(r.top_probs[..., :-1] >= r.top_probs[..., 1:])
    torch.testing.assert_close(r.target_prob, r.logprobs[..., r.target_id].exp())
    final_top1 = r.top_ids[-1, :, 0]
    torch.testing.assert_close(r.final_top1_prob[-1], r.top_probs[-1, :, 0])
    torch.testing.assert_close(r.final_top1_prob, r.logprobs.exp().gather(-1, final_top1.expand(len(r.layers), -1)[..., None])[..., 0])


def test_result_is_small_and_roundtrips(tmp_path):
    m = random_model("gpt2", n_layers=2)
    r = logit_lens(m, "hello", target=5)
    assert r.logprobs is None and r.top_ids.shape == (3, len(r.tokens), 5)
    path = r.save(tmp_path / "lens.safetensors")
    back = LensResult.load(path)
    assert back.layers == r.layers and back.top_tokens == r.top_tokens and torch.equal(back.target_rank, r.target_rank)


def test_targets_and_errors():
    m = random_model("gpt2", n_layers=2)
    r = logit_lens(m, "hello", target="ab")  # the character tokenizer makes "ab" two tokens
    assert r.target == "a" and "first token" in r.target_note
    with pytest.raises(InterpError, match="empty"):
        logit_lens(m, "hello", target="")
    with pytest.raises(InterpError, match="outside the vocabulary"):
        logit_lens(m, "hello", target=10**6)
    with pytest.raises(InterpError, match="empty"):
        logit_lens(m, "   ")
    with pytest.raises(InterpError, match="statistic"):
        r.stat("nope")
    with pytest.raises(InterpError, match="target"):
        logit_lens(m, "hello").stat("target_rank")


def test_soft_cap_is_applied():
    m = random_model("gpt2", n_layers=1)
    h = torch.randn(3, m.cfg.d_model) * 10
    with torch.no_grad():
        raw = m.unembed(m.ln_final(h))
        m.cfg.output_logits_soft_cap = 2.0
        try:
            capped = decode(m, h)
        finally:
            m.cfg.output_logits_soft_cap = -1.0
    torch.testing.assert_close(capped, 2.0 * torch.tanh(raw / 2.0))


def test_layer_stride_keeps_last():
    assert layer_stride(5, 1) == [0, 1, 2, 3, 4]
    assert layer_stride(5, 3) == [0, 3, 4]
    assert layer_stride(7, 3) == [0, 3, 6]
    assert layer_stride(1, 4) == [0]
    with pytest.raises(InterpError):
        layer_stride(5, 0)
