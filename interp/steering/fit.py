"""Fitting steering vectors: GrAInS (attribution-masked hidden-state deltas) and the mean-difference baseline.

GrAInS, per example and per sequence s ∈ {prompt+preferred, prompt+dispreferred}:

1. score every token of s with Integrated Gradients of f = log P(y⁺|x) − log P(y⁻|x) (``attribution.py``);
2. I⁺ = the k highest-scoring positions, I⁻ = the k lowest (over all positions unless excluded; ``top_k_positions``);
3. replace the tokens at I⁺ (resp. I⁻) by the mask token (pad, else unk, else eos; the length is kept);
4. D_m gets the row h_l(s) − h_l(s \\ I_m) read at the last token of s, for m ∈ {pos, neg} and each layer l.

Then u_m = aggregate(D_m) (first principal component with its sign aligned to the mean row, or the mean) and
v_l = u_pos − u_neg. The mean-difference baseline (contrastive activation addition) is
v_l = mean over examples of h_l(prompt+preferred) − h_l(prompt+dispreferred) at the last token.
Both are normalised to unit norm by default so that one ``alpha`` means the same step for both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.models import model_device, model_name, pad_right, special_token_id
from interp.steering.attribution import contrast_token_scores, fit_ig_settings, top_k_positions
from interp.steering.data import ContrastExample
from interp.steering.scoring import Encoded, encode
from interp.steering.vectors import HOOK, SteeringVectors

__all__ = ["fit_grains", "fit_mean_difference", "aggregate", "mask_tokens", "mask_token_id", "hidden_at", "masked_sequences",
           "grains_directions"]

AGGREGATES = ("pca", "mean")
TEXT_EXCLUDE = ("bos", "answer")
"""what ``exclude`` of ``fit_grains`` may hold: positions never masked"""


def _check_layers(model, layers: int | Sequence[int]) -> list[int]:
    layers = [layers] if isinstance(layers, int) else [int(x) for x in layers]
    n = model.cfg.n_layers
    if not layers:
        raise InterpError("no layers given: pass e.g. layers=[model.cfg.n_layers - 1]")
    layers = [x + n if x < 0 else x for x in layers]
    bad = [x for x in layers if not 0 <= x < n]
    if bad:
        raise InterpError(f"layers {bad} do not exist in a {n}-layer model (valid: 0..{n - 1}, or negative from the end)")
    return sorted(set(layers))


def _check_examples(examples: Sequence[ContrastExample]) -> list[ContrastExample]:
    examples = list(examples)
    if not examples:
        raise InterpError("no contrast examples given: pass at least one ContrastExample")
    if not all(isinstance(e, ContrastExample) for e in examples):
        raise InterpError("examples must be ContrastExample objects (see interp.steering.load_contrast)")
    return examples


def mask_token_id(model) -> int:
    """The id that replaces masked tokens: the tokenizer's pad token, else unk, else eos (as GrAInS does)."""
    value = special_token_id(model)
    if value is None:
        raise InterpError("the tokenizer has no pad, unk or eos token to mask with: pass mask_id=...")
    return value


def mask_tokens(ids: torch.Tensor, positions: torch.Tensor, mask_id: int) -> torch.Tensor:
    """A copy of [T] ``ids`` with ``positions`` replaced by ``mask_id`` (same length)."""
    out = ids.clone()
    out[positions] = mask_id
    return out


@torch.no_grad()
def hidden_at(model, seqs: list[torch.Tensor], read: list[int], layers: list[int], *, batch_size: int = 64) -> torch.Tensor:
    """[n, layer, d_model] float32 residual stream after block ``l`` (``blocks.l.hook_resid_post``) of
    ``seqs[i]`` at position ``read[i]``, for each of ``layers``; sequences run right-padded in batches."""
    names = [HOOK.format(layer=layer) for layer in layers]
    out = torch.empty(len(seqs), len(layers), model.cfg.d_model)
    dev = model_device(model)
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start : start + batch_size]
        batch = pad_right(chunk)[0].to(dev)
        _, cache = model.run_with_cache(batch, names_filter=names)
        rows = torch.arange(len(chunk), device=dev)
        cols = torch.tensor(read[start : start + batch_size], device=dev)
        for j, name in enumerate(names):
            out[start : start + len(chunk), j] = cache[name][rows, cols].float().cpu()
    return out


def aggregate(deltas: torch.Tensor, how: str = "pca") -> torch.Tensor:
    """[d] summary direction of [n, d] ``deltas``.

    "pca": the first principal component (unit norm) of the centred rows, its sign flipped so that its dot
    product with the mean row is ≥ 0 (the reference code leaves the sign arbitrary). When the rows have no
    spread (n = 1 or all equal) the normalised mean is returned. "mean": the mean row (not normalised; PCA
    centres the data and so cannot see a constant shift, the mean can).
    """
    if how not in AGGREGATES:
        raise InterpError(f"unknown aggregate {how!r}; choose one of {', '.join(AGGREGATES)}")
    d = deltas.double()
    mean = d.mean(0)
    if how == "mean":
        return mean.float()
    centred = d - mean
    scale = d.abs().max().clamp_min(1e-30)
    if d.shape[0] < 2 or centred.abs().max() <= 1e-12 * scale:
        return (mean / mean.norm().clamp_min(1e-30)).float()
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    pc = vh[0]
    if pc @ mean < 0:
        pc = -pc
    return pc.float()


def _finish(v: torch.Tensor, normalize: bool) -> tuple[torch.Tensor, list[float]]:
    norms = v.norm(dim=-1)
    if normalize:
        if (norms <= 0).any():
            raise InterpError("a fitted steering vector is exactly zero (the contrast has no effect at that layer); "
                              "try other layers, a smaller k, or more examples")
        v = v / norms[:, None]
    return v, norms.tolist()


def fit_mean_difference(model, examples: Sequence[ContrastExample], layers: int | Sequence[int], *,
                        normalize: bool = True, batch_size: int = 64) -> SteeringVectors:
    """Contrastive-activation-addition baseline: v_l = mean_i [h_l(x_i ⊕ y⁺_i) − h_l(x_i ⊕ y⁻_i)] at the last token.

    Returns ``SteeringVectors`` [layer, d_model] (unit norm when ``normalize``; raw norms in ``meta``).
    """
    examples, layers = _check_examples(examples), _check_layers(model, layers)
    enc = [encode(model, e) for e in examples]
    seqs = [e.sequence(+1) for e in enc] + [e.sequence(-1) for e in enc]
    h = hidden_at(model, seqs, [len(s) - 1 for s in seqs], layers, batch_size=batch_size)
    n = len(enc)
    v, norms = _finish((h[:n] - h[n:]).mean(0), normalize)
    meta = dict(n_examples=n, normalized=normalize, raw_norms=norms, read="last",
                resid_norm=h.norm(dim=-1).mean(0).tolist())
    return SteeringVectors(v, layers, "mean_difference", model_name(model), "per_token", meta)


AttributionFn = Callable[[object, list[Encoded]], list[tuple[torch.Tensor, torch.Tensor]]]


def fit_grains(model, examples: Sequence[ContrastExample], *, layers: int | Sequence[int], k: int | None = None,
               aggregate: str = "pca", n_steps: int = 50, baseline: str = "auto", read: str = "last",
               exclude: Sequence[str] = ("bos", "answer"), normalize: bool = True, internal_batch_size: int | None = None,
               attribution_fn: AttributionFn | None = None, mask_id: int | None = None, progress: bool = True,
               batch_size: int = 64, ig_method: str = "adaptive") -> SteeringVectors:
    """GrAInS steering vectors (see the module docstring) for ``layers``.

    ``k``: tokens masked per sequence and sign; None (default): GrAInS's 10, but at most a quarter of the
    maskable positions, so that I⁺ and I⁻ stay disjoint and most of a short prompt stays intact.
    ``aggregate``: "pca" or "mean". ``n_steps``/``baseline``/``internal_batch_size``:
    passed to ``interp.attribution.ig.embedding_ig`` (with ``ig_method``, its rule); ``n_steps`` caps the IG points
    per sequence (50, as captum's default). On SmolLM2 (12 sentiment examples, bench/results/grains_real.md) the cap
    decides how far the vector steers: at 21 / 32 / 50 / 100 points the held-out gain at the chosen alpha is +1.02 /
    +1.78 / +2.31 / +2.29 nats (cosine with mean difference 0.17 / 0.42 / 0.48 / 0.49) for a fit of 43 / 64 / 102 /
    198 s on two CPU threads; 400 points on an H200 gave +2.19. ``read``: "last" reads h
    at the last token of prompt ⊕ answer
    (GrAInS) or "prompt" at the last prompt token (where the answer is predicted). ``exclude``: any of
    "bos", "answer" (positions never masked). Both by default, unlike the reference code: masking BOS removes
    the attention sink and masking an answer token changes the token at the read position itself, and either
    delta swamps the contrast (on SmolLM2 the reference choice steered the wrong way, cosine -0.64 with the
    mean-difference vector); pass ``exclude=()`` for the reference behaviour. ``attribution_fn(model, encoded)`` replaces IG (benchmarks);
    it returns one (scores of prompt⊕y⁺ [T⁺], scores of prompt⊕y⁻ [T⁻]) pair per example.

    Returns ``SteeringVectors`` with ``vectors`` [layer, d_model] (unit norm when ``normalize``) and the fit
    details in ``meta`` (raw norms, selected tokens, mean completeness error of IG, mean residual norm).
    """
    check_fit_options(aggregate, read, exclude, TEXT_EXCLUDE)
    examples, layers = _check_examples(examples), _check_layers(model, layers)
    enc = [encode(model, e) for e in examples]
    completeness: list[float] = []
    if attribution_fn is None:
        scores, completeness = contrast_token_scores(
            model, enc, fit_ig_settings(n_steps, baseline, ig_method, internal_batch_size), progress=progress)
    else:
        scores = attribution_fn(model, enc)
    mid = mask_token_id(model) if mask_id is None else int(mask_id)
    seqs, reads, chosen = masked_sequences(model, enc, scores, k=k, exclude=exclude, mask_id=mid, read=read,
                                           progress=progress)
    h = hidden_at(model, seqs, reads, layers, batch_size=batch_size)  # [6n, layer, d]
    v, norms, resid = grains_directions(h, len(enc), aggregate, normalize)
    meta = grains_meta(len(enc), k=k, aggregate=aggregate, n_steps=n_steps, ig_method=ig_method, baseline=baseline,
                       read=read, exclude=exclude, normalize=normalize, norms=norms, mask_id=mid, resid=resid,
                       completeness=completeness, chosen=chosen)
    return SteeringVectors(v, layers, "grains", model_name(model), "per_token", meta)


def check_fit_options(aggregate: str, read: str, exclude: Sequence[str], allowed: Sequence[str]) -> None:
    """Raise ``InterpError`` naming the choices for an unknown ``aggregate``, ``read`` position or ``exclude`` entry
    (``allowed``: the entries the caller knows)."""
    if aggregate not in AGGREGATES:
        raise InterpError(f"unknown aggregate {aggregate!r}; choose one of {', '.join(AGGREGATES)}")
    if read not in ("last", "prompt"):
        raise InterpError(f"unknown read position {read!r}; choose 'last' or 'prompt'")
    bad = set(exclude) - set(allowed)
    if bad:
        raise InterpError(f"unknown exclude entries {sorted(bad)}; choose from {', '.join(repr(x) for x in allowed)}")


def grains_meta(n: int, *, k, aggregate, n_steps, ig_method, baseline, read, exclude, normalize, norms, mask_id, resid,
                completeness: list[float], chosen: list[dict]) -> dict:
    """The fit details a GrAInS ``SteeringVectors`` keeps in ``meta`` (options, raw norms, mean residual norm, mean IG
    completeness error or None, the first 50 examples' selected positions)."""
    return dict(n_examples=n, k=k, aggregate=aggregate, n_steps=n_steps, ig_method=ig_method, baseline=baseline, read=read,
                exclude=list(exclude), normalized=normalize, raw_norms=norms, mask_id=mask_id, resid_norm=resid,
                completeness_error=(sum(completeness) / len(completeness)) if completeness else None,
                selected=chosen[:50])


def masked_sequences(model, enc: list[Encoded], scores: list[tuple[torch.Tensor, torch.Tensor]], *, k: int | None,
                     exclude: Sequence[str], mask_id: int, read: str, never: Sequence[Sequence[int]] | None = None,
                     progress: bool = False) -> tuple[list[torch.Tensor], list[int], list[dict]]:
    """GrAInS steps 2-3 for each example and sign: the top-k positions I⁺ and I⁻ of its scores (``fit_grains``'s ``k``
    and ``exclude``; ``never[i]``: more positions of example ``i`` never masked) and the sequence with each masked.

    Returns (sequences: 6 per example, in the order (sign +1, -1) x (full, I⁺ masked, I⁻ masked); the position to read
    each at (``read``: "last" or "prompt"); per example {"pos"|"neg": {"top_positive", "top_negative"}}).
    """
    has_bos = bool(model.cfg.default_prepend_bos) if hasattr(model.cfg, "default_prepend_bos") else True
    seqs: list[torch.Tensor] = []
    reads: list[int] = []
    chosen: list[dict] = []
    for n, (e, pair) in enumerate(tqdm(list(zip(enc, scores)), desc="GrAInS masking", disable=not progress)):
        info = {}
        for sign, sc in zip((+1, -1), pair):
            s = e.sequence(sign)
            if sc.shape[0] != s.shape[0]:
                raise InterpError(f"attribution has {sc.shape[0]} scores for a {s.shape[0]}-token sequence")
            excl = [] if never is None else [int(p) for p in never[n]]
            if "bos" in exclude and has_bos:
                excl.append(0)
            if "answer" in exclude:
                excl += list(range(len(e.prompt), len(s)))
            kk = k if k is not None else max(1, min(10, (s.shape[0] - len(set(excl))) // 4))
            i_pos, i_neg = top_k_positions(sc.detach().cpu(), kk, exclude=excl)
            seqs += [s, mask_tokens(s, i_pos, mask_id), mask_tokens(s, i_neg, mask_id)]
            r = len(s) - 1 if read == "last" else len(e.prompt) - 1
            reads += [r, r, r]
            info["pos" if sign > 0 else "neg"] = {"top_positive": i_pos.tolist(), "top_negative": i_neg.tolist()}
        chosen.append(info)
    return seqs, reads, chosen


def grains_directions(h: torch.Tensor, n: int, how: str, normalize: bool) -> tuple[torch.Tensor, list[float], list[float]]:
    """GrAInS steps 4-5 from [6n, layer, d] hidden states in ``masked_sequences``' order: (vectors [layer, d] =
    aggregate of the I⁺ deltas minus that of the I⁻ deltas, unit norm when ``normalize``; their raw norms [layer];
    the mean residual norm of the full sequences [layer])."""
    h = h.view(n, 2, 3, h.shape[1], -1)  # example, sign, (full, masked I+, masked I-)
    d_pos = (h[:, :, 0] - h[:, :, 1]).reshape(2 * n, h.shape[3], -1)  # [2n, layer, d]
    d_neg = (h[:, :, 0] - h[:, :, 2]).reshape(2 * n, h.shape[3], -1)
    v, norms = _finish(_layer_differences(d_pos, d_neg, how), normalize)
    return v, norms, h[:, :, 0].norm(dim=-1).mean((0, 1)).tolist()


def _layer_differences(d_pos: torch.Tensor, d_neg: torch.Tensor, how: str) -> torch.Tensor:
    """[layer, d]: ``aggregate(d_pos[:, j], how) - aggregate(d_neg[:, j], how)`` for each layer ``j`` of the [n, layer, d]
    differences (a function of its own, where the ``aggregate`` option of ``fit_grains`` does not hide ``aggregate``)."""
    return torch.stack([aggregate(d_pos[:, j], how) - aggregate(d_neg[:, j], how) for j in range(d_pos.shape[1])])
