"""IG of a whole answer's log-probability, and of the contrast of two answers (the ``Answer`` objective; GrAInS's).

f(y | x) = Σ_{t=P}^{T-1} log P(tokens[t] | tokens[<t]) over the answer tokens of x ⊕ y (teacher-forced; P the prompt
length), one IG row per sequence whatever the answer's length. The contrast of a preferred and a dispreferred answer,
f = f(y⁺) − f(y⁻), is a sum of a function of x ⊕ y⁺'s embeddings and one of x ⊕ y⁻'s, so IG of f over the first
sequence is IG of f(y⁺) and over the second is −IG of f(y⁻) (IG is linear in the objective): each sequence is
integrated alone and rows of equal (prompt, total) length share one batched call, however many examples they come
from (``interp.steering.fit`` attributes a whole training set this way).

The reference GrAInS code scores the token already in the last position instead of the next one (an off-by-one, see
../shared/research/grains.md, step 1); here the logits at P−1 … T−2 gather the tokens P … T−1.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from interp.attribution.ig import embedding_ig
from interp.attribution.settings import IGSettings

__all__ = ["SequenceIG", "answer_logprob_objective", "sequences_ig", "contrast_completeness", "completeness_note"]


def answer_logprob_objective(prompt_len: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """objective(logits [b, T, vocab], tokens [b, T]) -> [b] float64: Σ_{t=P}^{T-1} log P(tokens[t] | tokens[<t])."""

    def objective(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(logits[:, prompt_len - 1 : -1].double(), -1)
        return logp.gather(-1, tokens[:, prompt_len:, None]).squeeze(-1).sum(-1)

    return objective


@dataclass(frozen=True)
class SequenceIG:
    """IG of one sequence's answer log-probability, times ``sign`` (+1 preferred, -1 dispreferred):
    ``scores`` [T] float32 (reduced per token as the settings say), ``total`` (the float64 sum of the signed per-token
    sums, whatever the reduction) and ``change`` (sign * (f(x) - f(baseline)))."""

    scores: torch.Tensor
    total: float
    change: float

    def error(self) -> float:
        """The relative completeness error |total - change| / |change|."""
        return abs(self.total - self.change) / max(abs(self.change), 1e-12)


def sequences_ig(model, rows: list[tuple[int, torch.Tensor, int]], settings: IGSettings, *, rows_per_call: int = 16,
                 progress: bool | Callable[[int, int], None] = False) -> list[SequenceIG]:
    """IG of each row's answer log-probability: ``rows`` [(prompt length P, sequence ids [T], sign)], one
    ``SequenceIG`` per row in their order. Rows of equal (P, T) share a call, ``rows_per_call`` at a time (fewer when
    ``settings.internal_batch_size`` is smaller), in the order their (P, T) first appears. ``progress``: True shows a
    bar over the calls; a function ``(points so far, budget)`` is handed to each call."""
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for r, (p_len, seq, _sign) in enumerate(rows):
        groups[(p_len, len(seq))].append(r)
    per = max(1, min(rows_per_call, settings.internal_batch_size or rows_per_call))
    chunks = [(key, members[j : j + per]) for key, members in groups.items() for j in range(0, len(members), per)]
    out: dict[int, SequenceIG] = {}
    for (p_len, _), members in tqdm(chunks, desc="answer IG", disable=progress is not True):
        tokens = torch.stack([rows[r][1] for r in members])
        ig = embedding_ig(model, tokens, answer_logprob_objective(p_len), settings, warn_threshold=None,
                          progress=progress if callable(progress) else None)
        sums = ig.attributions if ig.signed is None else ig.signed  # completeness on the signed sums, any reduction
        for i, r in enumerate(members):
            sign = rows[r][2]
            out[r] = SequenceIG(sign * ig.attributions[i], sign * float(sums[i].double().sum()),
                                sign * float(ig.objective[i].double() - ig.baseline_objective[i].double()))
    return [out[r] for r in range(len(rows))]


def contrast_completeness(pos: SequenceIG, neg: SequenceIG) -> dict[str, float]:
    """The completeness of a contrast from its two rows: the contrast's relative error and change, each sequence's
    error, and the change of log P(y+) and of log P(y-) from baseline to input."""
    change = pos.change + neg.change
    return dict(contrast=abs(pos.total + neg.total - change) / max(abs(change), 1e-12), change=change,
                preferred=pos.error(), change_preferred=pos.change, dispreferred=neg.error(),
                change_dispreferred=-neg.change)


def completeness_note(c: dict[str, float]) -> str:
    """One sentence on a contrast's IG completeness error ``c`` (``contrast_completeness``).

    Why a large contrast error is expected and acceptable for steering: the contrast's change is the difference of the
    two sequences' changes (each often 5-15 nats from the zero baseline), so per-sequence errors of a few percent
    become tens or hundreds of percent of a small difference; and GrAInS steers with the *ranking* of positions (its
    top-k), which on SmolLM2 stops changing the steering at 50 IG points while the error keeps falling with more
    points (bench/results/grains_real.md, "The IG cap on the CPU"). Returns the sentence.
    """
    head = (f"IG completeness error {c['contrast']:.1%} of the contrast (change {c['change']:+.2f} nats); per sequence "
            f"{c['preferred']:.1%} (y+, change {c['change_preferred']:+.2f}) and {c['dispreferred']:.1%} "
            f"(y-, change {c['change_dispreferred']:+.2f})")
    if c["contrast"] <= 0.01:
        return head + "."
    return (head + ": the contrast is a difference of the two changes, so small errors in each become a large one in "
            "their difference; steering uses only which positions rank top-k, and on SmolLM2 more IG points no longer "
            "change the steering while this error still falls (bench/results/grains_real.md), so it is stated, not chased.")
