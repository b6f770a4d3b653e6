"""GrAInS contrastive token attribution: Integrated Gradients of log P(y⁺|x) − log P(y⁻|x).

The objective is ``interp.attribution``'s ``Answer(against=y⁻)`` with the target y⁺: the teacher-forced
log-probability of each answer summed over its tokens, the two sequences x ⊕ y⁺ and x ⊕ y⁻ integrated separately
(``interp.attribution.answers``, which also says why that is exact and where the reference code is off by one).
``grains_attribution`` is ``attribute(model, prompt, y⁺, method="integrated_gradients", objective=Answer(y⁻))`` plus
GrAInS's top-k marks; ``contrast_token_scores`` runs the same IG for many examples at once (rows of equal length share
a call), as ``fit_grains`` needs.

On a vision-language model a ``VisionContrast`` (a prompt of text and image parts) is attributed the same way: inside
``interp.attribution.vision.visual_inputs`` the visual tokens' input embeddings are the connector's output, so IG
scores them like text tokens (baseline: zero there too) and each visual token is named by its patch, ``<img R,C>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from interp.attribution import attribute
from interp.attribution.answers import answer_logprob_objective, completeness_note, contrast_completeness, sequences_ig
from interp.attribution.ig import points_budget
from interp.attribution.objectives import Answer
from interp.attribution.result import TokenAttribution
from interp.attribution.settings import IGSettings
from interp.attribution.vision import visual_inputs
from interp.errors import InterpError
from interp.steering.data import ContrastExample, VisionContrast
from interp.steering.scoring import Encoded, contrast_gaps, encode, encode_parts

__all__ = ["grains_attribution", "contrast_token_scores", "fit_ig_settings", "FIT_TOLERANCE", "answer_logprob_objective", "top_k_positions",
           "completeness_note"]


def top_k_positions(scores: torch.Tensor, k: int, *, exclude: Sequence[int] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """(I⁺, I⁻): the ``k`` positions of [T] ``scores`` with the largest and with the smallest scores.

    Positions in ``exclude`` are never chosen; each set has min(k, allowed positions) distinct entries, and the
    two are disjoint whenever 2k ≤ allowed positions. Ties break towards the lower position.
    """
    if k < 1:
        raise InterpError(f"k must be at least 1, got {k}")
    allowed = torch.ones(scores.shape[0], dtype=torch.bool)
    allowed[list(exclude)] = False
    idx = torch.nonzero(allowed).squeeze(-1)
    s = scores[idx].double()
    kk = min(k, idx.numel())
    order_desc = sorted(range(idx.numel()), key=lambda i: (-s[i].item(), i))[:kk]
    order_asc = sorted(range(idx.numel()), key=lambda i: (s[i].item(), i))[:kk]
    return idx[order_desc], idx[order_asc]


FIT_TOLERANCE = 0.05
"""The completeness tolerance at which ``fit_grains`` stops IG: GrAInS uses only which positions rank top-k, which
stops changing well before 1% (bench/results/grains_real.md)."""


def fit_ig_settings(max_points: int, baseline: str = "auto", rule: str = "adaptive",
                    internal_batch_size: int | None = None) -> IGSettings:
    """The ``IGSettings`` of GrAInS's fit: ``max_points`` per call (21 is the adaptive rule's starting grid graded
    towards the baseline; ``fit_grains`` passes 50, which steers twice as far on SmolLM2, bench/results/grains_real.md),
    stopping at ``FIT_TOLERANCE``; ``rule`` another rule of ``embedding_ig``, e.g. captum's "gausslegendre" with
    ``max_points`` points, as the reference code used."""
    return IGSettings().replace(baseline=baseline, max_points=max_points, tolerance=FIT_TOLERANCE,
                                internal_batch_size=internal_batch_size, rule=rule)  # each checked


def contrast_token_scores(model, encoded: list[Encoded], settings: IGSettings | None = None, *, rows_per_call: int = 16,
                          progress: bool = False) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[float]]:
    """IG scores of every token of x ⊕ y⁺ and x ⊕ y⁻ for the contrastive objective, for each example.

    ``settings``: the IG settings (default ``fit_ig_settings(21)``). Rows of equal (prompt length, total length) are
    batched, ``rows_per_call`` per IG call (fewer when ``settings.internal_batch_size`` is smaller;
    ``interp.attribution.answers.sequences_ig``). Returns ([(scores⁺ [T⁺], scores⁻ [T⁻]) per example] float32, where
    scores⁻ already carry the minus sign of f, and [relative completeness error of f per example]).
    """
    rows = [(len(e.prompt), e.sequence(sign), sign) for e in encoded for sign in (+1, -1)]
    out = sequences_ig(model, rows, settings or fit_ig_settings(21), rows_per_call=rows_per_call, progress=progress)
    pairs = [(out[2 * i].scores, out[2 * i + 1].scores) for i in range(len(encoded))]
    return pairs, [contrast_completeness(out[2 * i], out[2 * i + 1])["contrast"] for i in range(len(encoded))]


def grains_attribution(model, example: ContrastExample | VisionContrast, *, max_points: int = 100, baseline: str = "auto", k: int = 10,
                       internal_batch_size: int | None = None, n_steps: int | None = None) -> TokenAttribution:
    """Token attribution of f = log P(preferred | prompt) − log P(dispreferred | prompt) (sum over answer tokens).

    ``attribute(model, prompt, preferred, method="integrated_gradients", objective=Answer(dispreferred))`` with the
    adaptive rule, up to ``max_points`` points per sequence, stopping at a 1% completeness error (``n_steps``: the
    budget's former name, deprecated), and GrAInS's selections added.

    Returns a ``TokenAttribution`` with two targets, the preferred and the dispreferred answer (both at the end
    of the prompt), and the prompt's tokens as sources: row 0 is IG over x ⊕ y⁺ (contribution to +log P(y⁺)),
    row 1 IG over x ⊕ y⁻ (contribution to −log P(y⁻)); their sum is each prompt token's total contribution to f.
    ``marks``: "top_positive"/"top_negative" = the k prompt positions with the largest/smallest summed score;
    "{top_positive,top_negative}_{preferred,dispreferred}" = GrAInS's per-sequence selections restricted to
    the prompt. ``info`` holds the log-probability gap and the scores of the answer tokens of each sequence.

    ``completeness_error`` [2] (both rows the same): the contrast's relative error, |Σ scores − Δf| / |Δf| with
    Δf = f(x) − f(baseline) of the contrast. It is often large (above 100% on SmolLM2 at 50-100 points) and is
    stated, not hidden: ``info["completeness"]`` has each sequence's own error and change and
    ``info["completeness_note"]`` says in words why (``completeness_note``).

    ``example`` a ``VisionContrast`` (a VLM and a prompt of text and image parts): the visual tokens are scored too,
    named ``<img R,C>`` in ``source_tokens``, and ``info["visual"]`` holds their positions and patches
    (``interp.attribution.vision.visual_info``; ``TokenAttribution.patch_scores`` reads it).
    """
    max_points = points_budget(max_points, n_steps, None, "grains_attribution")
    vision = isinstance(example, VisionContrast)
    enc, vin = encode_parts(model, example) if vision else (encode(model, example), None)
    with visual_inputs(model, vin):
        gap = float(contrast_gaps(model, [enc])[0])
    att = attribute(model, list(example.prompt) if vision else example.prompt, example.preferred,
                    method="integrated_gradients", objective=Answer(against=example.dispreferred), max_points=max_points,
                    baseline=baseline, internal_batch_size=internal_batch_size)
    marks = {}
    for name, row in (("", att.scores.sum(0)), ("_preferred", att.scores[0]), ("_dispreferred", att.scores[1])):
        i_pos, i_neg = top_k_positions(row, k)
        marks["top_positive" + name], marks["top_negative" + name] = i_pos.tolist(), i_neg.tolist()
    info = dict(att.info)
    a_pos, a_neg = info.pop("answer_scores")
    info = dict(logprob_gap=gap, prompt=example.text() if vision else example.prompt, preferred=example.preferred,
                dispreferred=example.dispreferred, answer_scores_preferred=a_pos, answer_scores_dispreferred=a_neg,
                contrast_total=info.pop("total"), **info)
    return dataclasses.replace(att, method="grains", marks=marks, info=info, options=dict(
        max_points=max_points, baseline=baseline, k=k, objective="log P(preferred) - log P(dispreferred)"))
