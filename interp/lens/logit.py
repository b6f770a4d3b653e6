"""Logit lens: decode every layer's residual stream through the model's own final norm and unembedding.

``logit_lens(model, prompt)`` caches ``blocks.{l}.hook_resid_pre`` for every block plus the final
``blocks.{L-1}.hook_resid_post`` (optionally each ``hook_resid_mid``), stacks them into one tensor
``[layer, pos, d_model]`` and computes ``unembed(ln_final(stack))`` in a single batched call. The final
norm is recomputed for every layer (never the final layer's cached scale, cf. TransformerLens #1076), and a
logit soft-cap is applied when the config has one. A tuned lens (``lens=TunedLens``) translates each
``resid_pre`` row before the same decoder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from interp.batch import BatchResult, is_batch, run_batch
from interp.errors import InterpError
from interp.models import model_name, str_tokens
from interp.results import Result
from interp.validate import check_bool, check_int, check_text, prompt_tokens

__all__ = ["LensResult", "logit_lens", "lens_rows", "decode", "resolve_target", "layer_stride", "STATISTICS"]

# Statistic name -> (LensResult field, human description). ``target_rank`` needs a target.
STATISTICS = {
    "final_prob": ("final_top1_prob", "probability of the final layer's top-1 token"),
    "entropy": ("entropy", "entropy of the layer's distribution (nats)"),
    "kl": ("kl", "KL(final || layer) (nats)"),
    "target_rank": ("target_rank", "rank of the target token (1 = top)"),
    "target_prob": ("target_prob", "probability of the target token"),
}


@dataclass(frozen=True)
class LensResult(Result):
    """Logit-lens (or tuned-lens) readout of one prompt.

    Rows ("layers") are the residual streams in ``layers``: ``"{l}_pre"`` = input of block ``l``,
    ``"{l}_mid"`` = between attention and MLP of block ``l`` (when asked), ``"final_post"`` = output of the
    last block, whose decoding equals the model's own output distribution.
    """

    model: str
    "name of the model"
    lens: str
    "the lens that decoded the rows"
    tokens: list[str]
    "[pos] the prompt's token strings"
    layers: list[str]
    "[layer] the row labels"
    top_ids: torch.Tensor
    "[layer, pos, k] the k most probable next tokens at each layer and position"
    top_probs: torch.Tensor
    "[layer, pos, k] their probabilities"
    top_tokens: list
    "[layer, pos, k] the strings of ``top_ids`` (nested lists)"
    entropy: torch.Tensor
    "[layer, pos] entropy in nats"
    kl: torch.Tensor
    "[layer, pos] KL(p_final || p_layer) in nats"
    final_top1_prob: torch.Tensor
    "[layer, pos] probability, at each layer, of the final layer's top-1 token"
    target: str | None = None
    "the target token's string, when a target was given"
    target_id: int | None = None
    "the target token's id"
    target_note: str = ""
    "how a word target became its token (leading-space form, first of several, or which of two forms and both ids)"
    target_rank: torch.Tensor | None = None
    "[layer, pos] rank of the target (1 = most probable), only when a target was given"
    target_prob: torch.Tensor | None = None
    "[layer, pos] probability of the target, only when a target was given"
    logprobs: torch.Tensor | None = None
    "[layer, pos, vocab] full log-probabilities, only when ``keep_logprobs=True``"
    _shapes = {
        "top_ids": "layer pos k", "top_probs": "layer pos k", "entropy": "layer pos", "kl": "layer pos",
        "final_top1_prob": "layer pos", "target_rank": "layer pos", "target_prob": "layer pos", "logprobs": "layer pos _",
        "tokens": "pos", "layers": "layer", "top_tokens": "layer pos k",
    }

    def stat(self, name: str) -> torch.Tensor:
        """The [layer, pos] grid of statistic ``name`` (a key of ``STATISTICS``)."""
        if name not in STATISTICS:
            raise InterpError(f"unknown statistic {name!r}; choose one of {', '.join(STATISTICS)}")
        value = getattr(self, STATISTICS[name][0])
        if value is None:
            raise InterpError(f"statistic {name!r} needs a target token: pass target='word'")
        return value


def layer_stride(n_rows: int, stride: int) -> list[int]:
    """Row indices 0, stride, 2*stride, ... that always include the last row ``n_rows - 1``."""
    if stride < 1:
        raise InterpError(f"layer stride must be at least 1, got {stride}")
    rows = list(range(0, n_rows, stride))
    if rows[-1] != n_rows - 1:
        rows.append(n_rows - 1)
    return rows


def lens_rows(model, incl_mid: bool = False) -> list[tuple[str, str]]:
    """(label, hook name) of every lens row in order: each block's resid_pre (and resid_mid), then final_post."""
    rows = []
    for layer in range(model.cfg.n_layers):
        rows.append((f"{layer}_pre", f"blocks.{layer}.hook_resid_pre"))
        if incl_mid:
            rows.append((f"{layer}_mid", f"blocks.{layer}.hook_resid_mid"))
    rows.append(("final_post", f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"))
    return rows


def decode(model, h: torch.Tensor) -> torch.Tensor:
    """Logits ``unembed(ln_final(h))`` for residual vectors ``h`` [..., d_model]; returns [..., vocab].

    The final norm is recomputed on ``h`` itself; a configured logit soft-cap (Gemma-2 style) is applied.
    """
    logits = model.unembed(model.ln_final(h))
    cap = getattr(model.cfg, "output_logits_soft_cap", -1.0) or -1.0
    if cap > 0:
        logits = cap * torch.tanh(logits / cap)
    return logits


def resolve_target(model, target: str | int, next_logprobs: torch.Tensor | None = None) -> tuple[int, str, str]:
    """(token id, its string, a note) for a user target (a word or a token id); the note says how a word became the token.

    A word that is several tokens uses its first token (the note says so). When the bare word is several tokens but
    the word with a leading space is one token (BPE vocabularies), the spaced form is used. When the bare word is one
    token *and* the spaced form is another (``'Paris'`` and ``' Paris'``), the form the model would continue the prompt
    with is used: the one with the higher probability in ``next_logprobs`` ([vocab] log-probabilities of the token after
    the prompt, e.g. the final layer's last position). Without ``next_logprobs`` the word is taken as written, and the
    note names the other form's id. A word written with its leading space (``' Paris'``) is always taken as written.
    Raises ``InterpError`` for an empty target, one that is neither text nor a whole number, an id outside
    the vocabulary, or a word whose first token is only whitespace (the word is not in the vocabulary: tracking
    the bare space token would say nothing about it).
    """
    vocab = model.cfg.d_vocab
    if isinstance(target, torch.Tensor) and target.numel() == 1 and not target.is_floating_point():
        target = int(target.reshape(-1)[0])
    if isinstance(target, int) and not isinstance(target, bool):
        if not 0 <= target < vocab:
            raise InterpError(f"target id {target} is outside the vocabulary (0..{vocab - 1})")
        return target, model.tokenizer.decode([target]), ""
    if not isinstance(target, str):
        raise InterpError(f"the target must be a word or a token id (a whole number), got {type(target).__name__} {target!r:.40}")
    if target == "":
        raise InterpError("the target is empty: give a word or a token id")
    check_text("the target", target)
    ids = model.tokenizer.encode(target, add_special_tokens=False)
    note = ""
    if not target.startswith(" ") and target.strip():
        spaced = model.tokenizer.encode(" " + target, add_special_tokens=False)
        if len(ids) != 1 and len(spaced) == 1:
            ids, note = spaced, f"target {target!r} is the token {' ' + target!r} (with a leading space)"
        elif len(ids) == 1 and len(spaced) == 1 and spaced[0] != ids[0] and max(ids[0], spaced[0]) < vocab:
            ids, note = _either_form(model, target, ids[0], spaced[0], next_logprobs)
    if not ids:
        raise InterpError(f"target {target!r} gives no token in this vocabulary: choose another word")
    if len(ids) > 1:
        note = f"target {target!r} is {len(ids)} tokens; its first token {model.tokenizer.decode(ids[:1])!r} is used"
    if ids[0] >= vocab:
        raise InterpError(f"target {target!r} maps to token {ids[0]}, outside the model's vocabulary of {vocab}")
    if len(ids) > 1 and not model.tokenizer.decode(ids[:1]).strip():
        pieces = [model.tokenizer.decode([i]) for i in ids[:4]]
        raise InterpError(f"target {target!r} is not a token of this vocabulary: it splits into {len(ids)} tokens {pieces}"
                          f"{'...' if len(ids) > 4 else ''} starting with bare whitespace; give a single-token word or a token id")
    return ids[0], model.tokenizer.decode(ids[:1]), note


def _either_form(model, word: str, bare: int, spaced: int, next_logprobs: torch.Tensor | None) -> tuple[list[int], str]:
    """([id], note) for a word that is a token both bare (``bare``) and with a leading space (``spaced``): the more
    probable of the two in ``next_logprobs`` [vocab], or the bare form when there is no distribution to ask."""
    forms = {bare: repr(word), spaced: repr(" " + word)}
    if next_logprobs is None:
        return [bare], (f"target {word!r} is the token {forms[bare]} (id {bare}) as written; {forms[spaced]} (id {spaced}) is "
                        "another token: pass its id or the word with its leading space to track that one")
    p = next_logprobs.reshape(-1).float().exp()
    pick, other = (spaced, bare) if p[spaced] >= p[bare] else (bare, spaced)
    return [pick], (f"target {word!r} is the token {forms[pick]} (id {pick}, p {float(p[pick]):.3g} after the prompt), the "
                    f"form the model continues with, not {forms[other]} (id {other}, p {float(p[other]):.3g}); pass a token "
                    "id to choose")


@torch.no_grad()
def residual_stack(model, tokens: torch.Tensor, incl_mid: bool = False, **forward) -> tuple[list[str], torch.Tensor]:
    """Run ``tokens`` [1, pos] once (``forward``: extra model inputs such as a VLM's ``pixel_values``); returns (row
    labels, stacked residuals [layer, pos, d_model])."""
    rows = lens_rows(model, incl_mid)
    names = {name for _, name in rows}
    missing = sorted(n for n in names if n not in model.hook_dict)
    if missing:
        raise InterpError(f"this model has no {missing[0]} hook (parallel attention and MLP have no mid stream): use incl_mid=False")
    _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names, **forward)
    return [label for label, _ in rows], torch.stack([cache[name][0] for _, name in rows])


@torch.no_grad()
def logit_lens(
    model,
    prompt: str | torch.Tensor,
    *,
    target: str | int | None = None,
    top_k: int = 5,
    lens=None,
    incl_mid: bool = False,
    keep_logprobs: bool = False,
) -> LensResult | BatchResult:
    """Decode every residual stream of ``prompt`` through the model's final norm and unembedding.

    ``prompt``: text (BOS prepended as the model does), a [1, pos] / [pos] id tensor, or for a vision-language model a
    list of text and image parts (``interp.models.vision``; visual tokens are labelled ``<img R,C>`` by their patch,
    and ``interp.lens.visual.visual_lens`` reads them by patch).
    ``target``: a word or token id whose rank and probability are tracked at every [layer, pos]. A word that is a
    token both bare and with a leading space (``"Paris"``: ``'Paris'`` and ``' Paris'``) tracks the form the model
    continues the prompt with (higher final probability at the last position); ``target_note`` says which and names both ids.
    ``lens``: ``None`` for the logit lens, or a ``TunedLens`` trained for this model.
    ``incl_mid``: add each block's mid-stream (between attention and MLP) as extra rows (logit lens only).
    Returns a ``LensResult`` with [layer, pos] statistics and [layer, pos, k] top-k; the full
    [layer, pos, vocab] log-probabilities only when ``keep_logprobs``. A list of prompts (``interp.batch.is_batch``; a
    ``target`` list gives one target per prompt) returns a ``BatchResult`` of one ``LensResult`` per prompt.
    """
    if is_batch(prompt):  # a list of prompts: each run alone, one bar, a BatchResult of LensResults (interp.batch)
        return run_batch(logit_lens, model, prompt, spread=("target",), target=target, top_k=top_k, lens=lens,
                         incl_mid=incl_mid, keep_logprobs=keep_logprobs)
    top_k = check_int("top_k", top_k, minimum=1)
    check_bool("incl_mid", incl_mid)
    check_bool("keep_logprobs", keep_logprobs)
    from interp.models.vision import prompt_inputs

    tokens, forward, labels_at = prompt_inputs(model, prompt, lambda p: prompt_tokens(model, p))
    if target is not None:
        resolve_target(model, target)  # a bad target fails before the forward pass
    labels, stack = residual_stack(model, tokens, incl_mid, **forward)
    if lens is not None:
        if incl_mid:
            raise InterpError("a tuned lens has translators only for the resid_pre streams: use incl_mid=False")
        lens.check_model(model)
        stack = lens.translate_stack(stack)
    out = _summarise(model, tokens, labels, stack, target, top_k, "logit" if lens is None else "tuned", keep_logprobs)
    if labels_at:
        out = dataclasses.replace(out, tokens=[labels_at.get(i, t) for i, t in enumerate(out.tokens)])
    return out


CHUNK_ELEMENTS = 1 << 23
"""Layers are decoded a few at a time so that one [layers, pos, vocab] block holds about this many floats (32 MB):
on a 49k vocabulary the full [31, pos, vocab] tensor and its temporaries are memory-bound and several GB."""


def _summarise(model, tokens, labels, stack, target, top_k, lens_name, keep_logprobs) -> LensResult:
    """Decode ``stack`` [layer, pos, d_model] in blocks of layers and reduce each block to its [layer, pos] statistics."""
    final = torch.log_softmax(decode(model, stack[-1:]).float(), dim=-1)[0]  # [pos, vocab]
    p_final, final_top1 = final.exp(), final.argmax(-1)
    t_id = t_str = None
    note = ""
    if target is not None:
        t_id, t_str, note = resolve_target(model, target, final[-1])  # a word in two forms: the model's continuation
    n_rows, n_pos = stack.shape[0], stack.shape[1]
    step = max(1, CHUNK_ELEMENTS // max(1, n_pos * final.shape[-1]))
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("tp", "ti", "ent", "kl", "f1", "tprob", "trank", "logp")}
    for i in range(0, n_rows, step):
        logp = torch.log_softmax(decode(model, stack[i : i + step]).float(), dim=-1)  # [chunk, pos, vocab]
        if i + step >= n_rows:
            logp[-1] = final  # the last row is the model's own distribution, the same bits as above
        probs = logp.exp()
        tp, ti = probs.topk(min(top_k, probs.shape[-1]), dim=-1)
        parts["tp"].append(tp)
        parts["ti"].append(ti)
        parts["ent"].append(-(probs * logp).sum(-1))
        parts["kl"].append((p_final * (final - logp)).sum(-1).clamp_min(0.0))  # forward KL; clamp float noise below 0
        parts["f1"].append(probs.gather(-1, final_top1.expand(probs.shape[0], -1)[..., None])[..., 0])
        if t_id is not None:
            t_logp = logp[..., t_id]
            parts["tprob"].append(t_logp.exp())
            parts["trank"].append((logp > t_logp[..., None]).sum(-1) + 1)
        if keep_logprobs:
            parts["logp"].append(logp)
    cat = lambda k: torch.cat(parts[k]) if parts[k] else None  # noqa: E731
    top_ids = cat("ti")
    return LensResult(
        model=model_name(model), lens=lens_name, tokens=str_tokens(model, tokens), layers=labels,
        top_ids=top_ids, top_probs=cat("tp"), top_tokens=_token_strings(model, top_ids), entropy=cat("ent"), kl=cat("kl"),
        final_top1_prob=cat("f1"), target=t_str, target_id=t_id, target_note=note, target_rank=cat("trank"),
        target_prob=cat("tprob"), logprobs=cat("logp") if keep_logprobs else None,
    )


def _token_strings(model, ids: torch.Tensor) -> list:
    """Decode an id tensor of any shape into nested lists of token strings (each id decoded alone)."""
    flat = ids.reshape(-1).tolist()
    cache = {i: model.tokenizer.decode([i]) for i in set(flat)}
    out = [cache[i] for i in flat]
    for size in reversed(ids.shape[1:]):
        out = [out[i : i + size] for i in range(0, len(out), size)]
    return out
