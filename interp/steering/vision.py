"""GrAInS on vision-language models: contrast examples whose prompts hold images (``VisionContrast``).

The LLaVA-shaped VLM reads an image as visual tokens: the connector's output sits at the image-token slots of the
prompt. Inside ``interp.attribution.vision.visual_inputs(model, vin)`` every forward on ids with those slots gets the
connector's output there (a slot holding another id: the mean visual token of its image), so the text-LM machinery
of GrAInS runs unchanged on image prompts, one image at a time:

1. attribution (``contrast_token_scores``): IG of log P(y⁺|x) − log P(y⁻|x) over the input embeddings of every token,
   visual (the connector's output; baseline zero there, as for text) and text alike;
2. top-k selection and masking (``masked_sequences``): the k highest and lowest positions of each sequence, visual
   tokens included, get the mask id; at a visual slot that means the **mean visual token of the same image**
   (``interp.attribution.vision.REPLACEMENT``): the patch's object is removed, the image's average kept;
3. deltas h_l(s) − h_l(s \\ I) at the read position and their aggregate (``grains_directions``), as for text.

Examples that share an image (same pixels, same slot positions) are batched together. Steering at inference is the
same ``SteeringVectors.steer`` hook (``blocks.{l}.hook_resid_post``, every position, visual tokens included).
``evaluate_vlm`` scores held-out questions (preferred-vs-dispreferred rate and the answer's rank-1 rate) and the
perplexity of captions given their image, per method and strength, with what standard errors need.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from interp.attribution.vision import encode_prompt, visual_inputs
from interp.errors import InterpError
from interp.models import model_device, model_name, pad_right, text_ids
from interp.models.vision import VisionInput
from interp.steering.attribution import contrast_token_scores, fit_ig_settings
from interp.steering.data import VisionContrast
from interp.steering.evaluate import SteeringEval, _named
from interp.steering.fit import (
    TEXT_EXCLUDE,
    _check_layers,
    _finish,
    check_fit_options,
    grains_directions,
    grains_meta,
    hidden_at,
    mask_token_id,
    masked_sequences,
)
from interp.steering.scoring import Encoded, continuation_logprob, encode_parts
from interp.steering.vectors import SteeringVectors, check_alpha

__all__ = ["fit_grains_vlm", "fit_mean_difference_vlm", "evaluate_vlm", "VlmSteeringEval", "image_groups"]

EXCLUDE = (*TEXT_EXCLUDE, "visual", "text")


def _check(examples: Sequence[VisionContrast]) -> list[VisionContrast]:
    examples = list(examples)
    if not examples:
        raise InterpError("no contrast examples given: pass at least one VisionContrast")
    if not all(isinstance(e, VisionContrast) for e in examples):
        raise InterpError("examples must be VisionContrast objects (a prompt of text and image parts and two answers); "
                          "for text prompts use interp.steering.fit_grains")
    return examples


def _key(vin: VisionInput) -> tuple:
    """What decides the visual tokens of a prompt: the pixels and the image slots' positions."""
    if vin.pixel_values is None:
        return ()
    digest = hashlib.sha256(vin.pixel_values.contiguous().numpy().tobytes()).hexdigest()
    return digest, tuple(vin.visual.tolist())


def image_groups(items: list[tuple[Encoded, VisionInput]]) -> list[tuple[VisionInput | None, list[int]]]:
    """Indices of ``items`` grouped by image (same pixels and slot positions), in first-seen order: [(the group's
    ``VisionInput``, or None for prompts without images; [item index])]."""
    groups: dict[tuple, tuple[VisionInput | None, list[int]]] = {}
    for i, (_, vin) in enumerate(items):
        key = _key(vin)
        if key not in groups:
            groups[key] = (vin if key else None, [])
        groups[key][1].append(i)
    return list(groups.values())


def _never(enc: Encoded, vin: VisionInput, exclude: Sequence[str]) -> list[int]:
    """Prompt positions that ``exclude``'s "visual" / "text" keep from masking (BOS and answers: ``masked_sequences``)."""
    visual = set(vin.visual.tolist())
    out = []
    if "visual" in exclude:
        out += sorted(visual)
    if "text" in exclude:
        out += [p for p in range(1, len(enc.prompt)) if p not in visual]
    return out


def fit_grains_vlm(model, examples: Sequence[VisionContrast], *, layers: int | Sequence[int], k: int | None = None,
                   aggregate: str = "pca", n_steps: int = 50, baseline: str = "auto", read: str = "last",
                   exclude: Sequence[str] = ("bos", "answer"), normalize: bool = True, mask_id: int | None = None,
                   ig_method: str = "adaptive", batch_size: int = 64, progress: bool = True) -> SteeringVectors:
    """GrAInS steering vectors from ``VisionContrast`` examples on a VLM (module docstring), for ``layers``.

    Options as ``interp.steering.fit_grains``; ``exclude`` may also hold "visual" (visual tokens are never masked: the
    vector then comes from text tokens alone) or "text" (only visual tokens, besides BOS and answers, are masked).
    A masked visual token becomes its image's mean visual token. Returns ``SteeringVectors`` [layer, d_model] with
    ``meta`` as ``fit_grains`` writes it plus ``masked_visual``: the fraction of the selected positions that are
    visual tokens (I⁺ and I⁻ over both sequences of every example).
    """
    check_fit_options(aggregate, read, exclude, EXCLUDE)
    examples, layers = _check(examples), _check_layers(model, layers)
    items = [encode_parts(model, e) for e in examples]
    mid = mask_token_id(model) if mask_id is None else int(mask_id)
    n = len(items)
    h = torch.empty(6 * n, len(layers), model.cfg.d_model)
    chosen: list[dict] = [{}] * n
    completeness: list[float] = []
    n_visual = n_all = 0
    for vin, idx in tqdm(image_groups(items), desc="GrAInS on images", disable=not progress):
        enc = [items[i][0] for i in idx]
        with visual_inputs(model, vin):
            scores, errors = contrast_token_scores(model, enc, fit_ig_settings(n_steps, baseline, ig_method))
            never = [_never(e, items[i][1], exclude) for e, i in zip(enc, idx)]
            seqs, reads, picked = masked_sequences(model, enc, scores, k=k, exclude=exclude, mask_id=mid, read=read,
                                                   never=never)
            hg = hidden_at(model, seqs, reads, layers, batch_size=batch_size)
        completeness += errors
        for j, i in enumerate(idx):
            h[6 * i : 6 * i + 6] = hg[6 * j : 6 * j + 6]
            chosen[i] = picked[j]
            visual = set(items[i][1].visual.tolist())
            for sel in picked[j].values():
                for positions in sel.values():
                    n_visual += sum(p in visual for p in positions)
                    n_all += len(positions)
    v, norms, resid = grains_directions(h, n, aggregate, normalize)
    meta = grains_meta(n, k=k, aggregate=aggregate, n_steps=n_steps, ig_method=ig_method, baseline=baseline, read=read,
                       exclude=exclude, normalize=normalize, norms=norms, mask_id=mid, resid=resid,
                       completeness=completeness, chosen=chosen)
    meta.update(masked_visual=n_visual / max(n_all, 1), images=True)
    return SteeringVectors(v, layers, "grains", model_name(model), "per_token", meta)


def fit_mean_difference_vlm(model, examples: Sequence[VisionContrast], layers: int | Sequence[int], *,
                            normalize: bool = True, batch_size: int = 64) -> SteeringVectors:
    """The mean-difference baseline on image prompts: v_l = mean_i [h_l(x_i ⊕ y⁺_i) − h_l(x_i ⊕ y⁻_i)] at the last
    token, each image's visual tokens in place. Returns ``SteeringVectors`` [layer, d_model]."""
    examples, layers = _check(examples), _check_layers(model, layers)
    items = [encode_parts(model, e) for e in examples]
    n = len(items)
    h = torch.empty(2 * n, len(layers), model.cfg.d_model)
    for vin, idx in image_groups(items):
        seqs = [items[i][0].sequence(s) for s in (+1, -1) for i in idx]
        with visual_inputs(model, vin):
            hg = hidden_at(model, seqs, [len(s) - 1 for s in seqs], layers, batch_size=batch_size)
        for j, i in enumerate(idx):
            h[i], h[n + i] = hg[j], hg[len(idx) + j]
    v, norms = _finish((h[:n] - h[n:]).mean(0), normalize)
    meta = dict(n_examples=n, normalized=normalize, raw_norms=norms, read="last", resid_norm=h.norm(dim=-1).mean(0).tolist(),
                images=True)
    return SteeringVectors(v, layers, "mean_difference", model_name(model), "per_token", meta)


@dataclass(frozen=True)
class VlmSteeringEval(SteeringEval):
    """``SteeringEval`` on image prompts, with the answer's rank-1 hits and per-caption NLL for standard errors.

    ``accuracy``: preferred-vs-dispreferred rate; ``perplexity``: of the captions' tokens given their image."""

    top1: torch.Tensor | None = None
    "[method, alpha, example] 1.0 where the preferred answer's first token is the model's top-1 next token"
    caption_nll: torch.Tensor | None = None
    "[method, alpha, caption] summed next-token NLL (nats, float64) of each caption's tokens given its image"
    caption_tokens: list[int] | None = None
    "[caption] tokens scored per caption"
    _shapes = {**SteeringEval._shapes, "top1": "method alpha example", "caption_nll": "method alpha caption",
               "caption_tokens": "caption"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.top1 is None or self.caption_nll is None or self.caption_tokens is None:
            raise ValueError("VlmSteeringEval needs top1, caption_nll and caption_tokens")

    def top1_rate(self) -> torch.Tensor:
        """[method, alpha] fraction of examples whose preferred answer is the top-1 next token."""
        return self.top1.mean(-1)

    def standard_errors(self) -> dict[str, torch.Tensor]:
        """[method, alpha] standard errors: "accuracy" and "top1" (binomial, sqrt(p (1 - p) / n)); "accuracy_change" and
        "top1_change" (paired over examples, against alpha = 0); "ppl_change" (of perplexity / perplexity at alpha = 0
        − 1, by the delta method over captions: the change in summed NLL per caption is the unit)."""
        n = self.gaps.shape[-1]
        hits = (self.gaps > 0).double()
        top = self.top1.double()
        j0 = self.alphas.index(0.0)
        out = {"accuracy": (hits.mean(-1) * (1 - hits.mean(-1)) / n).sqrt(),
               "top1": (top.mean(-1) * (1 - top.mean(-1)) / n).sqrt(),
               "accuracy_change": _paired_se(hits - hits[:, j0 : j0 + 1]),
               "top1_change": _paired_se(top - top[:, j0 : j0 + 1])}
        tokens = float(sum(self.caption_tokens))
        d = self.caption_nll - self.caption_nll[:, j0 : j0 + 1]  # [method, alpha, caption]
        rise = (d.sum(-1) / tokens).exp()
        out["ppl_change"] = rise * _paired_se(d) * d.shape[-1] / tokens
        return {k: v.float() for k, v in out.items()}

    def at_cost(self, method: str, max_ppl_increase: float, metric: str = "accuracy") -> dict:
        """The alpha of ``method`` with the best ``metric`` ("accuracy" or "top1") among alphas whose perplexity rises
        by at most ``max_ppl_increase`` (relative) over alpha = 0; ties go to the smaller |alpha|. Returns a dict:
        alpha, accuracy, top1, ppl_increase and their standard errors."""
        m = self.methods.index(method)
        se = self.standard_errors()
        base = self.baseline_perplexity()
        score = self.accuracy if metric == "accuracy" else self.top1_rate()
        best = None
        for j, _ in sorted(enumerate(self.alphas), key=lambda t: abs(t[1])):
            rise = float(self.perplexity[m, j]) / base - 1
            if rise <= max_ppl_increase and (best is None or float(score[m, j]) > float(score[m, best])):
                best = j
        return dict(alpha=self.alphas[best], accuracy=float(self.accuracy[m, best]), top1=float(self.top1_rate()[m, best]),
                    ppl_increase=float(self.perplexity[m, best]) / base - 1, accuracy_se=float(se["accuracy"][m, best]),
                    top1_se=float(se["top1"][m, best]), accuracy_change_se=float(se["accuracy_change"][m, best]),
                    top1_change_se=float(se["top1_change"][m, best]), ppl_change_se=float(se["ppl_change"][m, best]))


def _paired_se(d: torch.Tensor) -> torch.Tensor:
    """[...] standard error of the mean over the last axis of ``d`` (0 with one entry)."""
    n = d.shape[-1]
    return (d.var(-1, unbiased=True) / n).sqrt() if n > 1 else torch.zeros(d.shape[:-1], dtype=d.dtype)


@torch.no_grad()
def _logits(model, seqs: list[torch.Tensor], batch_size: int):
    """Yields (index of the first sequence, log-softmax [b, T, vocab] float64) over right-padded batches of ``seqs``."""
    dev = model_device(model)
    for start in range(0, len(seqs), batch_size):
        batch = pad_right(seqs[start : start + batch_size])[0].to(dev)
        yield start, torch.log_softmax(model(batch).double(), -1)


def _answer_scores(model, enc: list[Encoded], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """([n] log P(y⁺) − log P(y⁻), [n] 1.0 where y⁺'s first token is the top-1 next token) of encoded examples that
    share one image (run inside its ``visual_inputs``). A one-token y⁻ is read off the prompt ⊕ y⁺ pass (the logits at
    the last prompt position do not depend on what follows)."""
    seqs = [e.sequence(+1) for e in enc]
    extra = [i for i, e in enumerate(enc) if len(e.dispreferred) > 1]
    seqs += [enc[i].sequence(-1) for i in extra]
    pos = torch.zeros(len(enc), dtype=torch.float64)
    neg = torch.zeros(len(enc), dtype=torch.float64)
    top = torch.zeros(len(enc))
    for start, logp in _logits(model, seqs, batch_size):
        for j in range(logp.shape[0]):
            r = start + j
            i = r if r < len(enc) else extra[r - len(enc)]
            e, p = enc[i], len(enc[i].prompt)
            ans = e.preferred if r < len(enc) else e.dispreferred
            total = logp[j, p - 1 : p + len(ans) - 1].gather(-1, ans.to(logp.device)[:, None]).sum().cpu()
            if r < len(enc):
                pos[i] = total
                top[i] = float(int(logp[j, p - 1].argmax()) == int(e.preferred[0]))
                if len(e.dispreferred) == 1:
                    neg[i] = logp[j, p - 1, int(e.dispreferred[0])].cpu()
            else:
                neg[i] = total
    return pos - neg, top


def _encode_captions(model, captions) -> list[tuple[Encoded, VisionInput]]:
    out = []
    for c in captions:
        if not (isinstance(c, (list, tuple)) and len(c) == 2 and isinstance(c[1], str) and c[1].strip()):
            raise InterpError("each caption must be a pair (prompt parts, caption text), e.g. ([image], ' red circle.')")
        vin = encode_prompt(model, list(c[0]))
        ids = text_ids(model, c[1], prepend_bos=False)
        if vin.ids.shape[1] + ids.numel() > model.cfg.n_ctx:
            raise InterpError(f"a caption with its prompt is longer than the model's context {model.cfg.n_ctx}")
        out.append((Encoded(vin.ids[0].cpu(), ids, ids), vin))
    return out


def _caption_nll(model, enc: list[Encoded], batch_size: int) -> torch.Tensor:
    """[n] summed NLL of each caption's tokens given its prompt (encoded as ``Encoded`` with the caption as answer)."""
    return -continuation_logprob(model, [e.prompt for e in enc], [e.preferred for e in enc], batch_size=batch_size)


def _score_all(model, items, captions, batch_size) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gaps = torch.zeros(len(items), dtype=torch.float64)
    top = torch.zeros(len(items))
    for vin, idx in image_groups(items):
        with visual_inputs(model, vin):
            g, t = _answer_scores(model, [items[i][0] for i in idx], batch_size)
        gaps[idx], top[idx] = g, t
    nll = torch.zeros(len(captions), dtype=torch.float64)
    for vin, idx in image_groups(captions):
        with visual_inputs(model, vin):
            nll[idx] = _caption_nll(model, [captions[i][0] for i in idx], batch_size)
    return gaps, top, nll


def evaluate_vlm(model, vectors, examples: Sequence[VisionContrast], *, alphas: Sequence[float],
                 captions: Sequence[tuple[list, str]], layers: Sequence[int] | None = None, norm_mode: str | None = None,
                 batch_size: int = 16, progress: bool = True) -> VlmSteeringEval:
    """Steer ``model`` with each vector set at each alpha; score ``examples`` and the ``captions`` given their images.

    ``vectors``: one ``SteeringVectors``, a list or a dict name -> vectors. ``alphas``: strengths (0 is added as the
    unsteered reference). ``captions``: (prompt parts, caption text) pairs, e.g. ``([image], " red circle.")``, whose
    perplexity (caption tokens only) is the fluency cost. Returns ``VlmSteeringEval`` ([method, alpha] tables).
    """
    sets = _named(vectors)
    examples = _check(examples)
    if isinstance(alphas, (str, bytes)) or not isinstance(alphas, Sequence | torch.Tensor):
        raise InterpError(f"alphas must be a list of numbers, got {type(alphas).__name__}")
    alphas = sorted({0.0, *(check_alpha(a) for a in (alphas.tolist() if isinstance(alphas, torch.Tensor) else alphas))})
    if not captions:
        raise InterpError("no captions given: pass (prompt parts, caption text) pairs to measure perplexity on")
    items = [encode_parts(model, e) for e in examples]
    caps = _encode_captions(model, captions)
    n_m, n_a = len(sets), len(alphas)
    gaps = torch.zeros(n_m, n_a, len(items))
    top = torch.zeros(n_m, n_a, len(items))
    nll = torch.zeros(n_m, n_a, len(caps), dtype=torch.float64)
    base = None
    bar = tqdm(total=n_m * n_a, desc="steering eval (images)", disable=not progress)
    for i, vec in enumerate(sets.values()):
        for j, a in enumerate(alphas):
            if a == 0.0 and base is not None:  # alpha = 0 is the identity for every method
                g, t, c = base
            else:
                with vec.steer(model, a, layers=layers, norm_mode=norm_mode):
                    g, t, c = _score_all(model, items, caps, batch_size)
                if a == 0.0:
                    base = (g, t, c)
            gaps[i, j], top[i, j], nll[i, j] = g.float(), t, c
            bar.update()
    bar.close()
    tokens = [len(e.preferred) for e, _ in caps]
    ppl = (nll.sum(-1) / sum(tokens)).exp().float()
    acc = (gaps > 0).float().mean(-1)
    used = {name: (list(layers) if layers is not None else v.layers) for name, v in sets.items()}
    return VlmSteeringEval(model_name(model), list(sets), alphas, acc, gaps.mean(-1), ppl, gaps, [e.text() for e in examples],
                           used, sum(tokens), top1=top, caption_nll=nll, caption_tokens=tokens)

