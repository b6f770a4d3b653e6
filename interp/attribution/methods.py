"""The built-in attribution methods, registered by name with their settings class (see ``registry``, ``settings``).

All methods score, for each target ``i`` at position ``p_i``, the tokens before it. Each is
``fn(model, tokens, positions, settings, objective, progress) -> MethodOutput``: ``settings`` an instance of its class in
``interp.attribution.settings``, ``objective`` the (kind, contrasted id) pair ``objectives.check_objective`` gives
(kind "" for a method that takes none; "answer" with the other answer's ids, which only IG computes),
``progress(done, total)`` or None.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from interp.attribution.answers import completeness_note, contrast_completeness, sequences_ig
from interp.attribution.attention_ig import attention_gate_ig
from interp.attribution.forward import LastLogits, trailing_logits
from interp.attribution.ig import deprecated, embed_hook_name, embedding_ig, points_budget
from interp.attribution.objectives import TargetObjective, objective_values
from interp.attribution.reagent import MASKS, ReagentConfig, reagent_scores
from interp.attribution.reduction import reduce_tokens
from interp.attribution.registry import MethodOutput, masked_scores, register
from interp.attribution.samplers import make_sampler
from interp.attribution.settings import (
    REAGENT_KEEP_TOP_N,
    AttentionIGSettings,
    AttentionSettings,
    GradientNormSettings,
    IGSettings,
    InputXGradientSettings,
    OcclusionSettings,
    RandomSettings,
    ReagentSettings,
)
from interp.errors import InterpError
from interp.models import model_device, special_token_id
from interp.models.vision import image_token_id

Objective = tuple[str, int | list[int] | None]
Progress = Callable[[int, int], None] | None


def _rows(tokens: torch.Tensor, positions: list[int]) -> torch.Tensor:
    """[target, max_pos] copies of the sequence up to the last target's prefix."""
    return tokens[: max(positions)][None].expand(len(positions), -1).clone()


def _pad(rows: torch.Tensor, length: int) -> torch.Tensor:
    if rows.shape[1] < length:
        rows = torch.cat([rows, torch.zeros(rows.shape[0], length - rows.shape[1], dtype=rows.dtype)], 1)
    return rows


def _target(tokens, positions, objective: Objective) -> TargetObjective:
    """The ``TargetObjective`` of the targets at ``positions`` (contrasted with one id at each, for a contrast)."""
    kind, against = objective
    return TargetObjective(positions, [int(tokens[p]) for p in positions], kind,
                           None if against is None else [against] * len(positions))


def _ig_rows(tokens, positions, objective: Objective) -> tuple[torch.Tensor, TargetObjective]:
    """The rows both IG methods attribute (``_rows``: one per target) and their ``TargetObjective``."""
    return _rows(tokens, positions), _target(tokens, positions, objective)


def _ig_output(out, tokens, positions) -> MethodOutput:
    """A ``MethodOutput`` from an ``IGOutput`` over ``_rows``: scores [target, L - 1], completeness error, diagnostics."""
    scores = masked_scores(_pad(out.attributions, tokens.shape[0] - 1), positions)
    info = {"baseline": out.baseline, "n_steps": out.n_steps, "objective": out.objective.tolist(),
            "baseline_objective": out.baseline_objective.tolist()}
    return MethodOutput(scores, out.completeness_error, info)


def _starts_with_bos(model, tokens: torch.Tensor) -> bool:
    """True when ``tokens`` [L] begins with the tokenizer's BOS token."""
    bos = special_token_id(model, ("bos_token_id",))
    return bos is not None and int(tokens[0]) == bos


@register("integrated_gradients", IGSettings)
def integrated_gradients(model, tokens, positions, s: IGSettings, objective: Objective, progress: Progress) -> MethodOutput:
    """IG of the target's probability (the default objective, as inseq and captum's LM examples) w.r.t. the token
    embeddings, from ``s.baseline`` ("auto"/"zero"/"zero_keep_bos"/"pad").

    The probability rather than the log-probability: the log-probability runs to -inf near the zero baseline, a steep
    integrand the quadrature must resolve (more points for the same error). ``s.rule="adaptive"`` (default):
    composite Simpson on a grid graded towards the baseline, intervals bisected where their exact completeness check
    fails, until the error is below ``s.tolerance`` or ``s.max_points`` points were used (a real LM's path has steep
    steps near the baseline that fixed rules hit or miss by chance; ``interp.attribution.quadrature``). A captum rule
    (``"gausslegendre"``, ``"riemann_trapezoid"``, ...) uses exactly ``max_points`` points (captum's ``n_steps``).
    ``s.n_steps``/``s.max_steps``: former names of the budget, deprecated (``n_steps`` alone leaves the adaptive
    rule's budget alone, as before). ``s.reduction``: per token, "sum" (signed), "l2" or "abs_sum"; the completeness
    error is always the signed sums'. ``progress(points so far, budget)`` after each pass (an exception it raises stops
    the call). ``s.upcast``: a bfloat16/float16 model integrates in float32 (its rounding otherwise swamps the 1%
    tolerance).
    """
    n_steps = s.n_steps
    if s.rule == "adaptive" and n_steps is not None and s.max_steps is None:  # as before: n_steps never capped it
        deprecated("integrated_gradients: n_steps is deprecated and never set the adaptive rule's budget (it still does "
                   "not); pass max_points")
        n_steps = None
    budget = points_budget(s.max_points, n_steps, s.max_steps, "integrated_gradients")
    s = dataclasses.replace(s, max_points=budget, n_steps=None, max_steps=None)
    if objective[0] == "answer":
        return _answer_output(model, tokens, positions[0], objective[1], s, progress)
    rows, target = _ig_rows(tokens, positions, objective)
    out = embedding_ig(model, rows, target, s, progress=progress)
    return _ig_output(out, tokens, positions)


def _answer_output(model, tokens, P: int, against: list[int] | None, s: IGSettings, progress: Progress) -> MethodOutput:
    """IG of the ``Answer`` objective (``interp.attribution.answers``): the target after the first ``P`` tokens as one
    answer, minus ``against`` when given. ``scores`` [row, P]: row 0 IG over prompt + target, row 1 (a contrast) minus
    IG over prompt + against; ``completeness_error`` [row] the contrast's (both rows) or the answer's; ``info`` the
    answer tokens' own scores, each sequence's completeness and, for a contrast, the sentence on its error."""
    seqs = [(P, tokens.cpu(), +1)]
    if against is not None:
        seqs.append((P, torch.cat([tokens[:P].cpu(), torch.tensor(against, dtype=tokens.dtype)]), -1))
    rows = sequences_ig(model, seqs, s, progress=progress or False)
    info: dict = {"answer_scores": [r.scores[P:].tolist() for r in rows]}
    if against is None:
        error = rows[0].error()
        info["completeness"] = dict(answer=error, change=rows[0].change)
    else:
        info["completeness"] = c = contrast_completeness(*rows)
        info["completeness_note"] = completeness_note(c)
        error = c["contrast"]
    info["total"] = sum(r.total for r in rows)  # signed, prompt and answer tokens: what completeness compares
    return MethodOutput(torch.stack([r.scores[:P] for r in rows]).float(), torch.tensor([error] * len(rows)), info)


@register("attention_ig", AttentionIGSettings)
def attention_ig(model, tokens, positions, s: AttentionIGSettings, objective: Objective, progress: Progress) -> MethodOutput:
    """IG over attention gates (``interp.attribution.attention_ig``): how much the objective depends on each earlier
    position being read by attention, every layer and head, from nothing read to the model as it is.

    A second view beside ``integrated_gradients``, not a replacement (how the two compare on real models:
    bench/results/attribution_real.md and attribution_grid.md). It does not credit a token's effect on its own
    residual stream, so the last prompt token is scored only through its self-attention. ``s.keep_bos``: the first
    position stays read when it is the BOS token (the attention sink). ``s.max_points``: the most path points, the
    rule stopping when the completeness error is below ``s.tolerance`` (``s.max_steps``: its former name, deprecated).
    One gate per position, so there is no per-token reduction to choose.
    """
    budget = points_budget(s.max_points, None, s.max_steps, "attention_ig")
    rows, target = _ig_rows(tokens, positions, objective)
    s = s.replace(max_points=budget, max_steps=None, keep_bos=s.keep_bos and _starts_with_bos(model, tokens))
    out = attention_gate_ig(model, rows, target, s, progress=progress)
    return _ig_output(out, tokens, positions)


def _embedding_grads(model, tokens, positions, objective: Objective) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the objective w.r.t. the token embeddings: (grad, emb), each [target, pos, d_model]."""
    rows = _rows(tokens, positions).to(model_device(model))
    fn = _target(tokens, positions, objective)
    hook = embed_hook_name(model)
    store = {}

    def leaf(act, hook):  # noqa: ARG001
        e = act.detach().clone().requires_grad_(True)
        store["e"] = e
        return e

    was = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        with torch.enable_grad():
            logits = trailing_logits(model, rows, fn.keep, [(hook, leaf)])
            (grad,) = torch.autograd.grad(fn(logits, rows).sum(), store["e"])
    finally:
        for p, g in zip(model.parameters(), was):
            p.requires_grad_(g)
    return grad.float(), store["e"].detach().float()


@register("input_x_gradient", InputXGradientSettings)
def input_x_gradient(model, tokens, positions, s: InputXGradientSettings, objective: Objective,
                     progress: Progress) -> MethodOutput:  # noqa: ARG001
    """embedding * d objective / d embedding (log-probability by default), reduced over d_model per token
    (``s.reduction``: "sum", signed, default; "l2" or "abs_sum")."""
    grad, emb = _embedding_grads(model, tokens, positions, objective)
    return MethodOutput(masked_scores(_pad(reduce_tokens(grad * emb, s.reduction).cpu(), tokens.shape[0] - 1), positions))


@register("gradient_norm", GradientNormSettings)
def gradient_norm(model, tokens, positions, s: GradientNormSettings, objective: Objective,
                  progress: Progress) -> MethodOutput:  # noqa: ARG001
    """d objective / d embedding (log-probability by default) reduced over d_model per token: its L2 norm by default
    (non-negative); ``s.reduction`` "abs_sum" (L1) or "sum" (signed) too."""
    grad, _emb = _embedding_grads(model, tokens, positions, objective)
    return MethodOutput(masked_scores(_pad(reduce_tokens(grad, s.reduction).cpu(), tokens.shape[0] - 1), positions))


@register("attention_last_layer", AttentionSettings)
@torch.no_grad()
def attention_last_layer(model, tokens, positions, s: AttentionSettings, objective: Objective,  # noqa: ARG001
                         progress: Progress) -> MethodOutput:  # noqa: ARG001
    """Attention weights of the last layer at query ``p_i - 1``, averaged over heads (non-negative, sum 1)."""
    name = f"blocks.{model.cfg.n_layers - 1}.attn.hook_pattern"
    _, cache = model.run_with_cache(tokens[: max(positions)][None], names_filter=[name])
    pat = cache[name][0].float().mean(0).cpu()  # [q, k]
    rows = torch.stack([pat[p - 1] for p in positions])
    return MethodOutput(masked_scores(_pad(rows, tokens.shape[0] - 1), positions))


def _replacement_id(model, replacement: str | int) -> int:
    if isinstance(replacement, int) and not isinstance(replacement, bool):
        if not 0 <= replacement < model.cfg.d_vocab:
            raise InterpError(f"occlusion replacement id {replacement} is outside the vocabulary (0..{model.cfg.d_vocab - 1})")
        return replacement
    if replacement not in ("pad", "delete"):
        raise InterpError(f"occlusion replacement must be 'delete', 'pad' or a token id, got {replacement!r:.60}")
    value = special_token_id(model)
    if value is None:
        raise InterpError("occlusion needs replacement=<token id> or 'delete': the tokenizer has no pad, unk or eos token")
    return value


def _deletable(model, tokens: torch.Tensor, positions: list[int]) -> bool:
    """Whether occlusion may delete tokens: not on an image prompt (the visual slots sit at fixed positions) and not
    with a target whose only context is one deletable token."""
    image = image_token_id(model)
    if image is not None and bool((tokens == image).any()):
        return False
    return min(positions) >= 2


def _objective_rows(model, rows: torch.Tensor, at: torch.Tensor, tgt_t: torch.Tensor, against: int | None, kind: str,
                    max_rows: int) -> torch.Tensor:
    """[rows, target] the objective of each row, its logits read at ``at`` [rows, target] (position of each target's
    prediction in that row), in chunks of ``max_rows``."""
    alt = None if against is None else torch.full_like(tgt_t, against)
    vals = []
    for i in range(0, rows.shape[0], max_rows):
        chunk, where = rows[i : i + max_rows], at[i : i + max_rows]
        if bool((where == chunk.shape[1] - 1).all()):  # every target read at the last position: only its logits
            logits = model(chunk, logits_to_keep=1)[:, -1:].expand(-1, where.shape[1], -1)
        else:
            logits = model(chunk).gather(1, where[..., None].expand(-1, -1, model.cfg.d_vocab).to(chunk.device))
        r = logits.shape[0]  # [r, target, vocab] -> [r, target]
        vals.append(objective_values(logits.float(), tgt_t[None].expand(r, -1), kind,
                                     None if alt is None else alt[None].expand(r, -1)))
    return torch.cat(vals)


@register("occlusion", OcclusionSettings)
@torch.no_grad()
def occlusion(model, tokens, positions, s: OcclusionSettings, objective: Objective,
              progress: Progress) -> MethodOutput:  # noqa: ARG001
    """objective(x) - objective(x with token j hidden): the drop in the target's probability (the default objective)
    when each token is hidden. ``s.replacement``: "delete" (default) removes token j, so the rest stays text the model
    reads in training (BOS is never deleted and scores 0, as IG keeps it in its baseline); "pad" or a token id
    replaces it (BOS too). On an image prompt, and where a target's only context is one token, "delete" falls back
    to the pad token (a visual token's slot then gets its image's mean visual token; ``info["replacement"]`` says)."""
    kind, against = objective
    L = max(positions)
    seq = tokens[:L].to(model_device(model))
    rid = _replacement_id(model, s.replacement)
    delete = s.replacement == "delete" and _deletable(model, tokens, positions)
    pos_t = torch.tensor([p - 1 for p in positions], device=seq.device)
    tgt_t = torch.tensor([int(tokens[p]) for p in positions], device=seq.device)
    if delete:
        first = int(_starts_with_bos(model, tokens))
        keep = ~torch.eye(L, dtype=torch.bool, device=seq.device)[first:]  # row j: every token but j
        rows = seq[None].expand(L - first, -1)[keep].view(L - first, L - 1)
        js = torch.arange(first, L, device=seq.device)
        at = pos_t[None] - (js[:, None] < pos_t[None] + 1).long()  # a target after j moves one place left
        v = _objective_rows(model, rows, at, tgt_t, against, kind, s.max_rows)
        full = _objective_rows(model, seq[None], pos_t[None], tgt_t, against, kind, s.max_rows)[0]
        drop = torch.zeros(L, len(positions), device=v.device)
        drop[first:] = full[None] - v
        drop = drop.T.cpu()  # [target, L]
    else:
        rows = seq[None].repeat(L + 1, 1)
        idx = torch.arange(L)
        rows[idx, idx] = rid  # row j: token j replaced; last row: the original
        v = _objective_rows(model, rows, pos_t[None].expand(L + 1, -1), tgt_t, against, kind, s.max_rows)  # [L + 1, target]
        drop = (v[-1][None] - v[:-1]).T.cpu()  # [target, L]
    info = {"replacement": "delete" if delete else "pad" if s.replacement in ("pad", "delete") else "id",
            "replacement_id": None if delete else rid}
    return MethodOutput(masked_scores(_pad(drop, tokens.shape[0] - 1), positions), info=info)


@register("random", RandomSettings)
def random_method(model, tokens, positions, s: RandomSettings, objective: Objective,  # noqa: ARG001
                  progress: Progress) -> MethodOutput:  # noqa: ARG001
    """softmax(U[0, 1)) over the tokens before each target, seeded by ``s.seed``."""
    g = torch.Generator().manual_seed(int(s.seed))
    rows = torch.full((len(positions), tokens.shape[0] - 1), math.nan)
    for i, p in enumerate(positions):
        rows[i, :p] = torch.softmax(torch.rand(p, generator=g), -1)
    return MethodOutput(rows)


@register("reagent", ReagentSettings)
def reagent(model, tokens, positions, s: ReagentSettings, objective: Objective,  # noqa: ARG001
            progress: Progress) -> MethodOutput:
    """ReAGent with settings that converge on a real vocabulary (``REAGENT_REAL``) and a uniform sampler.

    Defaults: replace 10% of the tokens per update, 8 probes, no stop check before 16 updates, at most 60, stop when
    the target is in the top 3 with only the ``keep_top_n`` best-scored tokens kept (default 8, or one less than the
    replaceable tokens of a shorter prefix), BOS never replaced (``fix_bos``), ``masks="cycle"``: each token replaced
    once per 10 updates in a random order (``masks="bernoulli"``: independent draws, as the reference code). Why these
    and not the reference code's (inseq's defaults: ``replace_ratio=0.3, keep_top_n=5, num_probes=16,
    max_steps=3000, min_steps=0, masks="bernoulli", fix_bos=False``, whose scores end one-hot and seed-dependent on a
    real vocabulary), with their cost and faithfulness against inseq: bench/results/attribution_real.md.
    ``settings.REAGENT_FAST`` trades stability for speed (the widget's first choice on a real LM).

    ``sampler``: "uniform", "unigram" (``sampler_texts=``), "model", "mlm" (``mlm=`` local directory or model,
    ``mlm_tokenizer``, ``trust_remote_code``) or a ``TokenSampler`` (see ``make_sampler``). ``batched=False``: the
    step-by-step loop (same numbers, many more forward calls); ``chunk``: steps run ahead per call (default: chosen
    per call). The forward is the bridge's own with ``logits_to_keep=1`` (hooks fire); ``lean=True`` opts into the
    hand-written lean forward (faster on toy models).
    """
    if s.masks not in MASKS:
        raise InterpError(f"unknown masks {s.masks!r}; choose 'cycle' (each token replaced once per 1/replace_ratio "
                          "updates) or 'bernoulli' (the reference code's independent draws)")
    smp = make_sampler(model, s.sampler, sampler_texts=s.sampler_texts, mlm=s.mlm, mlm_tokenizer=s.mlm_tokenizer,
                       trust_remote_code=s.trust_remote_code)
    fwd = LastLogits(model, max_rows=s.max_rows, lean=s.lean)
    fix_first = s.fix_bos and _starts_with_bos(model, tokens)
    names = {f.name for f in dataclasses.fields(ReagentConfig)} & {f.name for f in dataclasses.fields(s)}
    shared = ReagentConfig(**{k: getattr(s, k) for k in names})  # the algorithm's fields, as the settings give them
    rows, info = [], {"converged": [], "steps": [], "stopped_at": [], "notes": []}
    for i, p in enumerate(positions):
        x = tokens[:p]
        fixed = torch.zeros(p, dtype=torch.bool)
        fixed[0] = fix_first
        keep = s.keep_top_n if s.keep_top_n is not None else max(1, min(REAGENT_KEEP_TOP_N, p - int(fixed.sum()) - 1))
        config = dataclasses.replace(shared, keep_top_n=keep, seed=s.seed + 7919 * i)
        run = reagent_scores(fwd, x, int(tokens[p]), smp, config, fixed=fixed, progress=progress)
        rows.append(_pad(run.scores.float()[None], tokens.shape[0] - 1)[0])
        info["converged"].append(run.converged)
        info["steps"].append(run.steps)
        info["stopped_at"].append(run.stopped_at.tolist())
        info["notes"].extend(run.notes)
    info["forward_calls"], info["forward_sequences"], info["forward"] = fwd.calls, fwd.sequences, fwd.path
    return MethodOutput(masked_scores(torch.stack(rows), positions), info=info)
