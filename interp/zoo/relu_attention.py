"""ReLU attention (Guo et al. 2024's mitigation of attention sinks) for GPT-2-style zoo models.

The attention weights are ``A[i, j] = ReLU(q_i . k_j * scale) / n_i`` for the keys ``j`` that query ``i``
may see, where ``n_i`` is the number of those keys (``i + 1`` for a causal row without padding). Rows are
not normalised, so a head can put (almost) no weight anywhere instead of parking it on the first token.

Two places compute attention and both are switched:

* Hugging Face: ``enable_relu_attention(cfg)`` registers the function ``"interp_relu"`` with
  ``transformers.AttentionInterface`` (and the matching additive mask with ``AttentionMaskInterface``) and
  marks the config (``cfg.interp_attention = "relu"``, saved in ``config.json``). Hugging Face does not save
  the attention implementation itself, so to reload a plain HF model call ``register()`` and pass
  ``attn_implementation="interp_relu"`` to ``from_pretrained`` (``interp.models.load_model`` needs nothing).
* TransformerLens: the bridge rebuilds attention itself (softmax inside its attention component), so
  ``patch_bridge(model)`` replaces that step on every attention component by the same ReLU rule; the
  ``hook_pattern`` hook then shows (and can edit) the ReLU pattern.
"""

from __future__ import annotations

import types

import torch

ATTN_NAME = "interp_relu"
MARKER = "interp_attention"


def relu_pattern(scores: torch.Tensor) -> torch.Tensor:
    """ReLU attention weights from masked scores [..., q, k] (masked entries very negative or -inf).

    Returns a tensor of the same shape: ``ReLU(score) / (number of unmasked keys in the row)``.
    """
    visible = scores > torch.finfo(scores.dtype).min / 2
    count = visible.sum(-1, keepdim=True).clamp(min=1).to(scores.dtype)
    return torch.where(visible, torch.relu(scores), torch.zeros_like(scores)) / count


def relu_attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention function for ``transformers.AttentionInterface``; same signature and outputs as eager attention.

    query/key/value: [batch, heads, pos, d_head]. Returns (output [batch, q_pos, heads, d_head], weights [b, h, q, k]).
    """
    if scaling is None:
        scaling = query.size(-1) ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    q_len, k_len = scores.shape[-2], scores.shape[-1]
    causal = torch.ones(q_len, k_len, dtype=torch.bool, device=scores.device).tril(k_len - q_len)
    neg = torch.finfo(scores.dtype).min
    scores = scores.masked_fill(~causal, neg)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask[..., :k_len], neg)
        else:
            scores = torch.where(attention_mask[..., :k_len] < neg / 2, torch.full_like(scores, neg), scores)
    weights = relu_pattern(scores).to(value.dtype)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights, value).transpose(1, 2)
    return out, weights


def register() -> None:
    """Register ``"interp_relu"`` with transformers' attention and attention-mask interfaces (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(ATTN_NAME, relu_attention_forward)
    AttentionMaskInterface.register(ATTN_NAME, eager_mask)


def enable_relu_attention(cfg):
    """Return ``cfg`` (a Hugging Face config) switched to ReLU attention and marked so that reloads keep it."""
    register()
    setattr(cfg, MARKER, "relu")
    cfg._attn_implementation = ATTN_NAME
    return cfg


def uses_relu_attention(cfg) -> bool:
    """True when a Hugging Face config was saved by a ReLU-attention model."""
    return getattr(cfg, MARKER, None) == "relu"


def _relu_softmax_dropout_pattern(self, attn_scores, target_dtype=None, upcast_to_fp32=False):
    """Drop-in for the bridge attention component's softmax step: ReLU rule, then ``hook_pattern``."""
    weights = relu_pattern(attn_scores.float() if upcast_to_fp32 else attn_scores)
    if target_dtype is not None:
        weights = weights.to(target_dtype)
    weights = self._apply_attn_dropout(weights)
    return self.hook_pattern(weights)


def patch_bridge(model) -> int:
    """Make every attention component of a ``TransformerBridge`` use ReLU attention; returns how many were patched.

    Also switches the wrapped Hugging Face model to ``"interp_relu"`` so calling it directly agrees.
    """
    register()
    n = 0
    for block in model.blocks:
        attn = block.attn
        if hasattr(attn, "_softmax_dropout_pattern"):
            attn._softmax_dropout_pattern = types.MethodType(_relu_softmax_dropout_pattern, attn)
            n += 1
    hf = getattr(model, "original_model", None)
    if hf is not None and hasattr(hf, "config"):
        hf.config._attn_implementation = ATTN_NAME
    if n != len(model.blocks):
        raise RuntimeError(f"could not switch {len(model.blocks) - n} attention components of this bridge to ReLU attention")
    return n
