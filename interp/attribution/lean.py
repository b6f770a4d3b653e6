"""Lean last-position forward passes for perturbation methods (ReAGent's probes).

A perturbation method asks one question of each perturbed prefix: the next-token logits at its last position.
The bridge's full forward answers it with every hook point, a ``[rows, pos, vocab]`` logits tensor and a
multi-op GELU; the plain Hugging Face forward still runs the last block's attention output and MLP at every
position. ``lean_forward(model)`` returns a function ``tokens [N, T] -> logits [N, vocab]`` (float32) that
computes the same numbers with fused ops and runs the last block for the last position only (its keys and
values still come from every position). It exists for the families most users have:

- GPT-2 (``gpt2``): learned positions, LayerNorm, GELU/ReLU MLP (the bundled ``stories`` and ``bb``);
- GPT-NeoX / Pythia (``gpt_neox``): LayerNorm, partial rotary positions, parallel or sequential residual;
- Llama-style (``llama``, ``mistral``, ``qwen2``): RoPE from the model's own rotary module, RMSNorm,
  grouped-query attention, gated SiLU MLP.

Weights are read from the modules at every call, so ``swap_weights`` / in-place edits are seen. It returns
``None`` for anything else (other families, ReLU attention, unusual config flags), and ``LastLogits``
then uses the Hugging Face forward; it also checks the lean numbers against that forward once per model
before trusting them, and never uses the lean path while a hook is attached to the bridge.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["lean_forward", "LEAN_FAMILIES"]

LEAN_FAMILIES = ("gpt2", "gpt_neox", "llama", "mistral", "qwen2")
_SQRT_2_OVER_PI_X2 = 2 * math.sqrt(2 / math.pi)
_BLOCK_TOKENS = 768  # tokens per row block at d_model 128 (scaled down for wider models)


def _raw(mod):
    """The Hugging Face module inside a bridge wrapper (``_original_component``), or ``mod`` itself."""
    while hasattr(mod, "_original_component"):
        mod = mod._original_component
    return mod


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's ``gelu_new`` as x * sigmoid(2 * sqrt(2/pi) * (x + 0.044715 x^3)), in place on a fresh tensor."""
    y = torch.addcmul(torch.ones((), dtype=x.dtype), x, x, value=0.044715)
    y.mul_(x).mul_(_SQRT_2_OVER_PI_X2).sigmoid_()
    return y.mul_(x)


_GPT2_ACTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu_new": _gelu_tanh, "gelu_pytorch_tanh": _gelu_tanh, "gelu_fast": _gelu_tanh,
    "gelu": F.gelu, "relu": F.relu,
}


def _ln(x: torch.Tensor, ln) -> torch.Tensor:
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


def _heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[N, T, n_heads * dh] -> [N, n_heads, T, dh]."""
    return x.view(x.shape[0], x.shape[1], n_heads, -1).transpose(1, 2)


def _merge(o: torch.Tensor) -> torch.Tensor:
    """[N, H, T, dh] -> [N, T, H * dh]."""
    return o.transpose(1, 2).reshape(o.shape[0], o.shape[2], -1)


def _conv1d(x: torch.Tensor, mod) -> torch.Tensor:
    """HF ``Conv1D`` (weight [in, out]) or ``nn.Linear`` (weight [out, in]) applied to x [..., in]."""
    if isinstance(mod, torch.nn.Linear):
        return F.linear(x, mod.weight, mod.bias)
    flat = x.reshape(-1, x.shape[-1])
    out = torch.addmm(mod.bias, flat, mod.weight) if mod.bias is not None else flat @ mod.weight
    return out.view(*x.shape[:-1], out.shape[-1])


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, last_only: bool, scale: float | None = None):
    """Causal attention of q [N, H, Tq, dh] over k, v [N, Hkv, T, dh]; ``last_only``: q is the last position.

    Short prompts on the CPU use two batched matmuls and a softmax (faster there than the fused kernel).
    """
    if k.shape[1] != q.shape[1]:
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    N, H, Tq, dh = q.shape
    T = k.shape[2]
    if q.device.type != "cpu" or T > 256:
        return F.scaled_dot_product_attention(q, k, v, is_causal=not last_only, scale=scale)
    scale = dh**-0.5 if scale is None else scale
    qf, kf, vf = q.reshape(N * H, Tq, dh), k.reshape(N * H, T, dh), v.reshape(N * H, T, dh)
    if last_only:
        w = torch.bmm(qf, kf.transpose(1, 2)).mul_(scale)
    else:
        mask = torch.full((T, T), -math.inf, dtype=q.dtype, device=q.device).triu_(1)
        w = torch.baddbmm(mask.expand(N * H, T, T), qf, kf.transpose(1, 2), alpha=scale)
    return torch.bmm(torch.softmax(w, -1), vf).view(N, H, Tq, dh)


def _blocks(fn: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor, width: int) -> torch.Tensor:
    """Run ``fn`` on row blocks of about ``_BLOCK_TOKENS`` tokens on the CPU (activations stay in cache)."""
    if ids.device.type != "cpu":
        return fn(ids)
    step = max(1, _BLOCK_TOKENS * 128 // (width * ids.shape[1]))
    if ids.shape[0] <= step:
        return fn(ids)
    return torch.cat([fn(ids[i : i + step]) for i in range(0, ids.shape[0], step)])


def _gpt2(hf) -> Callable[[torch.Tensor], torch.Tensor] | None:
    cfg = hf.config
    act = _GPT2_ACTS.get(getattr(cfg, "activation_function", ""))
    if act is None or getattr(cfg, "scale_attn_by_inverse_layer_idx", False) or not getattr(cfg, "scale_attn_weights", True):
        return None
    tr, H = hf.transformer, cfg.n_head
    blocks = []
    for blk in tr.h:  # the bridge runs split q / k / v projections; refuse any other layout
        b, mlp = _raw(blk), _raw(_raw(blk).mlp)
        blocks.append(tuple(_raw(m) for m in (b.ln_1, b.attn.q, b.attn.k, b.attn.v, b.attn.o, b.ln_2, mlp.c_fc, mlp.c_proj)))
    wte, wpe, lnf, head = _raw(tr.wte), _raw(tr.wpe), _raw(tr.ln_f), _raw(hf.lm_head)
    width = cfg.n_embd

    def one(ids: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        h = wte.weight[ids] + wpe.weight[:T]
        for i, (ln1, q_, k_, v_, o_, ln2, fc, proj) in enumerate(blocks):
            last = i == len(blocks) - 1
            a = _ln(h, ln1)
            aq = a[:, -1:] if last else a
            q, k, v = _heads(_conv1d(aq, q_), H), _heads(_conv1d(a, k_), H), _heads(_conv1d(a, v_), H)
            o = _merge(_attend(q, k, v, last))
            h = (h[:, -1:] if last else h) + _conv1d(o, o_)
            a = _ln(h, ln2)
            h = h + _conv1d(act(_conv1d(a, fc)), proj)
        h = _ln(h[:, -1], lnf)
        return F.linear(h, head.weight, head.bias).float()

    return lambda ids: _blocks(one, ids, width)


def _rms(x: torch.Tensor, norm) -> torch.Tensor:
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))
    return F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype) * norm.weight


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rot = torch.cat((-x[..., half:], x[..., :half]), -1)
    return x * cos + rot * sin


def _rotate_part(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on the first ``cos.shape[-1]`` dimensions of x (partial rotary), the rest passed through."""
    rd = cos.shape[-1]
    if rd == x.shape[-1]:
        return _rotate(x, cos, sin)
    return torch.cat((_rotate(x[..., :rd], cos, sin), x[..., rd:]), -1)


def _neox(hf) -> Callable[[torch.Tensor], torch.Tensor] | None:
    cfg = hf.config
    act = _GPT2_ACTS.get(getattr(cfg, "hidden_act", ""))
    if act is None:
        return None
    base = hf.gpt_neox
    layers = []
    for layer in base.layers:
        lay, attn, mlp = _raw(layer), _raw(layer).attention, _raw(_raw(layer).mlp)
        layers.append(tuple(_raw(m) for m in (lay.input_layernorm, attn.q, attn.k, attn.v, attn.o, lay.post_attention_layernorm,
                                             mlp.dense_h_to_4h, mlp.dense_4h_to_h)))
    rotary, embed, lnf, head = _raw(base.rotary_emb), _raw(base.embed_in), _raw(base.final_layer_norm), _raw(hf.lm_head)
    H, parallel, width = cfg.num_attention_heads, bool(cfg.use_parallel_residual), cfg.hidden_size

    def one(ids: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        h = embed.weight[ids]
        cos, sin = rotary(h, torch.arange(T, device=ids.device)[None])
        cos, sin = cos[:, None], sin[:, None]  # [1, 1, T, rotary dims]
        for i, (ln1, q_, k_, v_, o_, ln2, up, down) in enumerate(layers):
            last = i == len(layers) - 1
            a = _ln(h, ln1)
            aq = a[:, -1:] if last else a
            q, k, v = _heads(_conv1d(aq, q_), H), _heads(_conv1d(a, k_), H), _heads(_conv1d(a, v_), H)
            q = _rotate_part(q, cos[:, :, -1:], sin[:, :, -1:]) if last else _rotate_part(q, cos, sin)
            o = _merge(_attend(q, _rotate_part(k, cos, sin), v, last))
            attn_out = F.linear(o, o_.weight, o_.bias)
            h = h[:, -1:] if last else h
            if parallel:
                mlp_in = _ln(h, ln2)
                h = F.linear(act(F.linear(mlp_in, up.weight, up.bias)), down.weight, down.bias) + attn_out + h
            else:
                h = attn_out + h
                mlp_in = _ln(h, ln2)
                h = F.linear(act(F.linear(mlp_in, up.weight, up.bias)), down.weight, down.bias) + h
        h = _ln(h[:, -1], lnf)
        return F.linear(h, head.weight, head.bias).float()

    return lambda ids: _blocks(one, ids, width)


def _llama(hf) -> Callable[[torch.Tensor], torch.Tensor] | None:
    cfg = hf.config
    if getattr(cfg, "hidden_act", "") != "silu" or getattr(cfg, "pretraining_tp", 1) != 1:
        return None
    if getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        return None  # a sliding-window mask differs from the causal one on long prompts
    base = hf.model
    layers = []
    for layer in base.layers:
        lay, attn, mlp = _raw(layer), _raw(_raw(layer).self_attn), _raw(_raw(layer).mlp)
        if hasattr(attn, "q_norm") or not hasattr(mlp, "gate_proj"):
            return None
        layers.append((_raw(lay.input_layernorm), *(_raw(m) for m in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj)),
                       _raw(lay.post_attention_layernorm), *(_raw(m) for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj)),
                       getattr(attn, "scaling", None)))
    rotary, embed, norm, head = _raw(base.rotary_emb), _raw(base.embed_tokens), _raw(base.norm), _raw(hf.lm_head)
    H, Hkv = cfg.num_attention_heads, getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    width = cfg.hidden_size

    def one(ids: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        h = embed.weight[ids]
        cos, sin = rotary(h, torch.arange(T, device=ids.device)[None])
        cos, sin = cos[:, None], sin[:, None]  # [1, 1, T, dh]
        for i, (ln1, q_, k_, v_, o_, ln2, gate, up, down, scale) in enumerate(layers):
            last = i == len(layers) - 1
            a = _rms(h, ln1)
            aq = a[:, -1:] if last else a
            q, k, v = _heads(_conv1d(aq, q_), H), _heads(_conv1d(a, k_), Hkv), _heads(_conv1d(a, v_), Hkv)
            q = _rotate(q, cos[:, :, -1:], sin[:, :, -1:]) if last else _rotate(q, cos, sin)
            o = _merge(_attend(q, _rotate(k, cos, sin), v, last, scale))
            h = (h[:, -1:] if last else h) + F.linear(o, o_.weight, o_.bias)
            a = _rms(h, ln2)
            h = h + F.linear(F.silu(F.linear(a, gate.weight, gate.bias)) * F.linear(a, up.weight, up.bias), down.weight, down.bias)
        h = _rms(h[:, -1], norm)
        return F.linear(h, head.weight, head.bias).float()

    return lambda ids: _blocks(one, ids, width)


def lean_forward(model) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``tokens [N, T] -> last-position logits [N, vocab]`` for ``model``'s family, or ``None`` if not covered.

    The returned function runs under ``torch.no_grad`` in the model's dtype and returns float32 logits. It
    does not check itself: ``LastLogits`` compares it with the Hugging Face forward once per model.
    """
    hf = getattr(model, "original_model", None)
    cfg = getattr(hf, "config", None)
    if cfg is None or getattr(cfg, "interp_attention", None) or getattr(cfg, "model_type", None) not in LEAN_FAMILIES:
        return None
    try:
        build = {"gpt2": _gpt2, "gpt_neox": _neox}.get(cfg.model_type, _llama)
        fn = build(hf)
    except AttributeError:  # a bridge layout this code does not know
        return None
    if fn is None:
        return None

    @torch.no_grad()
    def run(ids: torch.Tensor) -> torch.Tensor:
        return fn(ids)

    return run
