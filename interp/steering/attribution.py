"""GrAInS contrastive token attribution: Integrated Gradients of log P(y⁺|x) − log P(y⁻|x).

The objective is the teacher-forced log-probability of the answer tokens (logits at positions P−1 … T−2
gather the tokens P … T−1, P = prompt length); the reference code scores the token already in the last
position instead (an off-by-one, see ../shared/research/grains.md, step 1). As in GrAInS, the two sequences
x ⊕ y⁺ and x ⊕ y⁻ are attributed separately: f = f⁺(E⁺) − f⁻(E⁻) is a sum of a function of E⁺ and a function
of E⁻, so IG of f with respect to E⁺ is IG of f⁺ and with respect to E⁻ is −IG of f⁻ (IG is linear in the
objective). This lets rows of many examples share one batched IG call (``interp.attribution.ig``).

On a vision-language model a ``VisionContrast`` (a prompt of text and image parts) is attributed the same way: inside
``interp.attribution.vision.visual_inputs`` the visual tokens' input embeddings are the connector's output, so IG
scores them like text tokens (baseline: zero there too) and each visual token is named by its patch, ``<img R,C>``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from interp.attribution.ig import embedding_ig, points_budget
from interp.attribution.result import TokenAttribution
from interp.attribution.vision import visual_info, visual_inputs
from interp.errors import InterpError
from interp.models import model_name, str_tokens
from interp.steering.data import ContrastExample, VisionContrast
from interp.steering.scoring import Encoded, contrast_gaps, encode, encode_parts

__all__ = ["grains_attribution", "contrast_token_scores", "answer_logprob_objective", "top_k_positions"]


def answer_logprob_objective(prompt_len: int):
    """objective(logits [b, T, vocab], tokens [b, T]) -> [b]: Σ_{t=P}^{T-1} log P(tokens[t] | tokens[<t])."""

    def objective(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(logits[:, prompt_len - 1 : -1].double(), -1)
        return logp.gather(-1, tokens[:, prompt_len:, None]).squeeze(-1).sum(-1)

    return objective


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


def contrast_token_scores(model, encoded: list[Encoded], *, max_points: int = 21, baseline: str = "auto",
                          internal_batch_size: int | None = None, rows_per_call: int = 16, tolerance: float = 0.05,
                          ig_method: str = "adaptive", progress: bool = False,
                          n_steps: int | None = None) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[float]]:
    """IG scores of every token of x ⊕ y⁺ and x ⊕ y⁻ for the contrastive objective, for each example.

    IG uses the adaptive rule of ``embedding_ig`` with at most ``max_points`` points per call (21, the default here,
    is its starting grid graded towards the baseline; ``fit_grains`` passes 50, which steers twice as far on SmolLM2,
    bench/results/grains_real.md) and stops
    early at ``tolerance`` (``ig_method``: another rule of ``embedding_ig``, e.g. captum's "gausslegendre" with
    ``max_points`` points, as the reference code used). ``n_steps``: the budget's former name, deprecated.
    Rows of equal (prompt length, total length) are batched, ``rows_per_call`` per IG call (fewer when
    ``internal_batch_size`` is smaller). Returns ([(scores⁺ [T⁺], scores⁻ [T⁻]) per example] float32, where scores⁻
    already carry the minus sign of f, and [relative completeness error of f per example]).
    """
    max_points = points_budget(max_points, n_steps, None, "contrast_token_scores")
    pairs, delta = _contrast_ig(model, encoded, max_points, baseline, internal_batch_size, rows_per_call, tolerance,
                                ig_method, progress)
    errors = []
    for i in range(len(encoded)):
        total = delta[(i, +1)][0] + delta[(i, -1)][0]
        change = delta[(i, +1)][1] + delta[(i, -1)][1]
        errors.append(abs(total - change) / max(abs(change), 1e-12))
    return pairs, errors


def _contrast_ig(model, encoded, max_points, baseline, internal_batch_size, rows_per_call, tolerance, ig_method, progress):
    """``contrast_token_scores``'s IG: ([(scores⁺, scores⁻)] per example, {(example, sign): (sign * sum of the
    attributions, sign * (f(x) - f(baseline)))} per sequence)."""
    rows = [(i, sign) for i in range(len(encoded)) for sign in (+1, -1)]
    groups: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for i, sign in rows:
        groups[(len(encoded[i].prompt), len(encoded[i].sequence(sign)))].append((i, sign))
    per = max(1, min(rows_per_call, internal_batch_size or rows_per_call))
    chunks = [(key, members[j : j + per]) for key, members in groups.items() for j in range(0, len(members), per)]
    scores: dict[tuple[int, int], torch.Tensor] = {}
    delta: dict[tuple[int, int], tuple[float, float]] = {}
    for (p_len, _), members in tqdm(chunks, desc="GrAInS IG", disable=not progress):
        tokens = torch.stack([encoded[i].sequence(sign) for i, sign in members])
        out = embedding_ig(model, tokens, answer_logprob_objective(p_len), baseline=baseline, max_points=max_points,
                           internal_batch_size=internal_batch_size, tolerance=tolerance, rule=ig_method,
                           warn_threshold=None)
        for r, (i, sign) in enumerate(members):
            scores[(i, sign)] = sign * out.attributions[r]
            delta[(i, sign)] = (sign * float(out.attributions[r].double().sum()),
                                sign * float(out.objective[r].double() - out.baseline_objective[r].double()))
    return [(scores[(i, +1)], scores[(i, -1)]) for i in range(len(encoded))], delta


def grains_attribution(model, example: ContrastExample | VisionContrast, *, max_points: int = 100, baseline: str = "auto", k: int = 10,
                       internal_batch_size: int | None = None, n_steps: int | None = None) -> TokenAttribution:
    """Token attribution of f = log P(preferred | prompt) − log P(dispreferred | prompt) (sum over answer tokens).

    IG: the adaptive rule, up to ``max_points`` points per sequence, stopping at a 1% completeness error
    (``n_steps``: the budget's former name, deprecated).

    Returns a ``TokenAttribution`` with two targets, the preferred and the dispreferred answer (both at the end
    of the prompt), and the prompt's tokens as sources: row 0 is IG over x ⊕ y⁺ (contribution to +log P(y⁺)),
    row 1 IG over x ⊕ y⁻ (contribution to −log P(y⁻)); their sum is each prompt token's total contribution to f.
    ``marks``: "top_positive"/"top_negative" = the k prompt positions with the largest/smallest summed score;
    "{top_positive,top_negative}_{preferred,dispreferred}" = GrAInS's per-sequence selections restricted to
    the prompt. ``info`` holds f(x), f(baseline), and the scores of the answer tokens of each sequence.

    ``completeness_error`` [2] (both rows the same): the contrast's relative error, |Σ scores − Δf| / |Δf| with
    Δf = f(x) − f(baseline) of the contrast. It is often large (above 100% on SmolLM2 at 50-100 points) and is
    stated, not hidden: ``info["completeness"]`` has each sequence's own error and change and
    ``info["completeness_note"]`` says in words why (``completeness_note``).

    ``example`` a ``VisionContrast`` (a VLM and a prompt of text and image parts): the visual tokens are scored too,
    named ``<img R,C>`` in ``source_tokens``, and ``info["visual"]`` holds their positions and patches
    (``interp.attribution.vision.visual_info``; ``TokenAttribution.patch_scores`` reads it).
    """
    max_points = points_budget(max_points, n_steps, None, "grains_attribution")
    enc, vin = encode_parts(model, example) if isinstance(example, VisionContrast) else (encode(model, example), None)
    with visual_inputs(model, vin):
        pairs, delta = _contrast_ig(model, [enc], max_points, baseline, internal_batch_size, 16, 0.01, "adaptive", False)
        gap = float(contrast_gaps(model, [enc])[0])
    (s_pos, d_pos), (s_neg, d_neg) = delta[(0, +1)], delta[(0, -1)]
    errors = [abs(s_pos + s_neg - (d_pos + d_neg)) / max(abs(d_pos + d_neg), 1e-12)]
    completeness = dict(contrast=errors[0], change=d_pos + d_neg, preferred=abs(s_pos - d_pos) / max(abs(d_pos), 1e-12),
                        change_preferred=d_pos, dispreferred=abs(s_neg - d_neg) / max(abs(d_neg), 1e-12),
                        change_dispreferred=-d_neg)  # changes from baseline to input: of f, log P(y+), log P(y-)
    a_pos, a_neg = pairs[0]
    p = len(enc.prompt)
    scores = torch.stack([a_pos[:p], a_neg[:p]])
    marks = {}
    for name, row in (("", scores.sum(0)), ("_preferred", scores[0]), ("_dispreferred", scores[1])):
        i_pos, i_neg = top_k_positions(row, k)
        marks["top_positive" + name], marks["top_negative" + name] = i_pos.tolist(), i_neg.tolist()
    names = str_tokens(model, enc.prompt)
    extra = {}
    if vin is not None and vin.visual.numel():
        for pos, label in vin.labels().items():
            names[pos] = label
        extra["visual"] = visual_info(vin)
    prompt = example.text() if isinstance(example, VisionContrast) else example.prompt
    return TokenAttribution(
        model=model_name(model),
        source_tokens=names,
        target_tokens=[example.preferred, example.dispreferred],
        scores=scores,
        method="grains",
        options=dict(max_points=max_points, baseline=baseline, k=k, objective="log P(preferred) - log P(dispreferred)"),
        target_positions=[p, p],
        target_ids=[int(enc.preferred[0]), int(enc.dispreferred[0])],
        completeness_error=torch.tensor([errors[0], errors[0]]),
        marks=marks,
        reduction="sum",
        info=dict(logprob_gap=gap, prompt=prompt, preferred=example.preferred, dispreferred=example.dispreferred,
                  answer_scores_preferred=a_pos[p:].tolist(), answer_scores_dispreferred=a_neg[p:].tolist(),
                  contrast_total=float(scores.sum()) + float(a_pos[p:].sum() + a_neg[p:].sum()),
                  completeness=completeness, completeness_note=completeness_note(completeness), **extra),
    )


def completeness_note(c: dict[str, float]) -> str:
    """One sentence on GrAInS's IG completeness error ``c`` (``grains_attribution``'s ``info["completeness"]``).

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
