"""A planted-ground-truth model for attribution tests and benchmarks: "copy the trigger token".

``trigger_model(trigger="q")`` edits a tiny random GPT-2 so that exactly one mechanism reaches the logits:
layer 0 attends uniformly over the prefix and moves one embedding direction, which only the trigger token
has, to the last position; the tied unembedding reads that direction back, so the trigger token becomes the
prediction whenever it occurs earlier in the prompt. Every other attention and MLP output is zeroed. The
trigger's position is therefore the one source that decides the prediction, and a faithful attribution
ranks it first.
"""

from __future__ import annotations

import torch

from interp.testing import random_model_dir

__all__ = ["trigger_model"]


@torch.no_grad()
def trigger_model(trigger: str = "q", *, amplitude: float = 0.5, gain: float = 1.0, offset: float = 0.0, seed: int = 0,
                  out=None):
    """A GPT-2 ``TransformerBridge`` (character tokenizer, BOS) whose prediction copies ``trigger`` when present.

    ``amplitude``: the trigger's embedding (and unembedding) entry on the planted direction; the trigger's
    logit is about ``amplitude * (8 - offset)`` when it occurred and ``-amplitude * offset`` when not, so
    the defaults give p(trigger) of about 0.6, and ``amplitude=20, offset=4`` a model that is certain
    (p rounds to 1 with the trigger and to almost 0 without). Returns ``(model, trigger_id)``.
    """
    from interp.models import load_model

    model = load_model(random_model_dir("gpt2", out, seed=seed, d_model=64, n_layers=2, n_heads=4), device="cpu")
    hf = model.original_model
    tid = model.tokenizer.convert_tokens_to_ids(trigger)
    tr = hf.transformer
    d = tr.wte.weight.shape[1]
    for emb in (tr.wte.weight, tr.wpe.weight):
        emb[:, 1:] -= emb[:, 1:].mean(-1, keepdim=True)  # zero mean over the other dimensions
        emb[:, 0] = 0
    tr.wte.weight[tid, 0] = amplitude
    for i, block in enumerate(tr.h):
        block.attn.c_proj.weight.zero_()
        block.attn.c_proj.bias.zero_()
        block.mlp.c_proj.weight.zero_()
        block.mlp.c_proj.bias.zero_()
        if i == 0:
            block.ln_1.weight.fill_(1.0)
            block.ln_1.bias.zero_()
            block.attn.c_attn.weight.zero_()  # Q = K = 0: uniform causal attention
            block.attn.c_attn.bias.zero_()
            block.attn.c_attn.weight[0, 2 * d] = 1.0  # head 0's value reads dimension 0
            block.attn.c_proj.weight[0, 0] = gain  # and writes it back to dimension 0
    tr.ln_f.bias.zero_()
    tr.ln_f.bias[0] = -offset
    return model, tid
