"""The one shared Integrated-Gradients core: captum's ``IntegratedGradients`` on the token embeddings.

``embedding_ig(model, tokens, objective)`` integrates the gradient of a scalar objective of the logits along
the straight line from a baseline embedding to the real token embeddings (the output of the raw token
embedding, ``embed.hook_out``; position embeddings are left untouched, as in the ReAGent and GrAInS code).
The attribution of a token is its vector over the embedding dimension reduced to one number (``reduction``: the
signed sum by default, or the L2 norm or the sum of absolute values, ``interp.attribution.reduction``); the
completeness error is always that of the signed sums.

The point budget has one name, ``max_points`` (default ``MAX_POINTS``): the most interpolation points IG evaluates
(each one forward and backward pass per row). The adaptive rule stops earlier once the completeness error is below
``tolerance``; a fixed captum rule uses exactly ``max_points`` points (captum's ``n_steps``). The former names
``n_steps`` and ``max_steps`` still work for one release, with a ``DeprecationWarning`` (``points_budget``).

The default rule is adaptive (``quadrature.py``): on trained LMs f along the path has steep transitions at
α between 1e-4 and 1e-2 (on SmolLM2 the scaled-down tokens act as extra attention sinks, with massive
activations, until each leaves that regime at its own α), which fixed rules with points spaced 1/n hit or miss
by chance. The adaptive rule places points on a grid graded towards the baseline and bisects where the local
completeness fails, so the error falls as the budget grows.

Baselines: ``interp.attribution.baselines`` ("auto", "zero", "zero_keep_bos", "pad").

Exactness across ``internal_batch_size``: captum splits the interpolation steps into chunks and sums the
chunks' results. The inputs handed to captum are float64 copies of the embeddings (cast back to the model's
dtype inside the forward function), so the per-step gradients are the model's own float32 numbers and the
sums over steps happen in float64; the final float32 attributions then agree for every chunking.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import torch

from interp.attribution.baselines import (
    BASELINES,
    baseline_embeddings,
    embed_hook_name,
    embeddings,
    has_learned_positions,
    resolve_baseline,
)
from interp.attribution.forward import trailing_logits
from interp.attribution.quadrature import adaptive_simpson
from interp.attribution.reduction import check_reduction, reduce_tokens
from interp.attribution.settings import MAX_POINTS, IGSettings
from interp.errors import InterpError
from interp.models import model_device
from interp.results import Result

__all__ = ["IGOutput", "embedding_ig", "in_float32", "adaptive_path_ig", "PathBudget", "auto_batch_size",
           "BASELINES", "MAX_POINTS", "deprecated", "points_budget", "resolve_baseline", "embed_hook_name", "has_learned_positions"]

_EPS = 1e-12
_PASS_BYTES = 512 * 2**20


@dataclass(frozen=True)
class IGOutput(Result):
    """What ``embedding_ig`` returns (tensors on the CPU, float32)."""

    attributions: torch.Tensor
    "[batch, pos] per-token attribution (the embedding dimension reduced by ``reduction``)"
    objective: torch.Tensor
    "[batch] f(x)"
    baseline_objective: torch.Tensor
    "[batch] f(baseline)"
    baseline: str = "zero"
    "the baseline used"
    n_steps: int = 50
    "the interpolation steps used"
    history: list[tuple[int, float, float]] | None = None
    "[round] adaptive rule only: (points used, worst completeness bound, worst completeness error) per refinement round"
    reduction: str = "sum"
    "how each token's per-dimension attributions became one number (``interp.attribution.reduction``)"
    signed: torch.Tensor | None = None
    "[batch, pos] the signed sums over the embedding dimension when ``reduction`` is not \"sum\" (completeness uses them)"
    _later = ("reduction", "signed")  # files written before these existed hold signed sums
    _shapes = {"attributions": "batch pos", "objective": "batch", "baseline_objective": "batch", "signed": "batch pos",
               "history": "round"}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.history is not None:  # a loaded file gives lists
            object.__setattr__(self, "history", [(int(n), float(b), float(e)) for n, b, e in self.history])


    @property
    def completeness_error(self) -> torch.Tensor:
        """[batch] |sum attr - (f(x) - f(b))| / max(|f(x) - f(b)|, eps): the relative completeness error."""
        diff = (self.objective - self.baseline_objective).double()
        sums = self.attributions if self.signed is None else self.signed
        err = (sums.double().sum(-1) - diff).abs() / diff.abs().clamp_min(_EPS)
        return err.float()


def embedding_ig(
    model,
    tokens: torch.Tensor,
    objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    settings: IGSettings | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    warn_threshold: float | None = 0.05,
    **changes,
) -> IGOutput:
    """IG on the token embeddings (``embed.hook_out``).

    ``tokens``: [batch, pos] ids. ``objective(logits [b, pos, vocab], tokens [b, pos]) -> [b]`` scalar per row;
    rows come step-major (row ``r`` of any call is example ``r % batch``), and it must treat rows independently. An
    objective with an int attribute ``keep`` (``objectives.TargetObjective``) reads only the last ``keep`` positions, and
    then only those logits are computed.
    ``settings`` (default ``IGSettings()``) with ``changes`` (its fields, e.g. ``max_points=64``; ``method``: the
    former name of ``rule``, deprecated), each checked (``InterpError`` naming a bad one). ``baseline``: "zero", "zero_keep_bos",
    "pad" or "auto" (module docstring).

    ``rule="adaptive"`` (default): composite Simpson on a partition of [0, 1] graded towards the baseline and
    bisected where the local completeness error is largest (``interp.attribution.quadrature``), until every
    row's completeness bound is below ``tolerance`` or ``max_points`` interpolation points are used. Other methods
    ("gausslegendre", "riemann_trapezoid", ...) are captum's fixed rules with exactly ``max_points`` points.
    ``n_steps``/``max_steps``: the former names of the budget, deprecated (``points_budget``).
    ``reduction``: "sum" (signed sum over d_model), "l2" or "abs_sum" per token (``interp.attribution.reduction``);
    the completeness error is that of the signed sums either way.

    ``internal_batch_size``: sequences per forward pass (at least ``batch``); None picks one that keeps the
    activations of a pass near 512 MiB (``auto_batch_size``). The result does not depend on it.
    Warns when a row's relative completeness error exceeds ``warn_threshold`` (None: never). ``progress(i, n)``
    is called after each pass with the points evaluated so far and the budget (an exception it raises stops IG).
    ``upcast`` (default): a model with 16-bit weights computes the path in float32 for this call (``in_float32``).
    bfloat16 rounds each logit by up to ~0.1 nats, far above a 1% completeness tolerance, so the local errors the
    adaptive rule refines are noise: on SmolLM2 on an H200, bf16 IG used the whole 800-point budget and ended at
    2.4% (median) in 9 s, against 51 points, 0.4% and 1.1 s in float32 (bench/results/gpu_real.md).
    Returns ``IGOutput`` with ``attributions`` [batch, pos]; ``n_steps`` = interpolation points used.
    """
    if "method" in changes:  # the former name of rule
        deprecated("embedding_ig: method= is deprecated; pass rule= (the IGSettings field)")
        changes["rule"] = changes.pop("method")
    s = (settings or IGSettings()).replace(**changes) if changes else (settings or IGSettings())
    if s.n_steps is not None or s.max_steps is not None:
        s = s.replace(max_points=points_budget(s.max_points, s.n_steps, s.max_steps, "embedding_ig"), n_steps=None,
                      max_steps=None)
    upcast = s.upcast
    with in_float32(model) if upcast else contextlib.nullcontext():
        out = _integrate(model, tokens, objective, s, progress)
    if warn_threshold is not None:
        worst = float(out.completeness_error.max())
        if worst > warn_threshold:
            fix = ("the model computes in 16-bit floats, whose rounding limits completeness: pass upcast=True"
                   if torch.finfo(_float_dtype(model)).bits < 32 and not upcast else "allow more points (max_points)")
            warnings.warn(
                f"IG completeness error {worst:.1%} with baseline {out.baseline!r} and {out.n_steps} points: the "
                f"attributions do not add up to f(x) - f(baseline); {fix}",
                stacklevel=2,
            )
    return out


@contextlib.contextmanager
def in_float32(model) -> Iterator[None]:
    """Inside: every 16-bit floating parameter and buffer of ``model`` is float32 (cast in place, the same
    ``Parameter`` objects); on exit, even by an exception, each is cast back to its own dtype, bit for bit (a 16-bit
    value is exact in float32). Costs twice the 16-bit weights' memory while inside."""
    low = [(t, t.dtype) for t in itertools.chain(model.parameters(), model.buffers())
           if t.is_floating_point() and torch.finfo(t.dtype).bits < 32]
    try:
        for t, _ in low:
            t.data = t.data.float()
        yield
    finally:
        for t, dtype in low:
            t.data = t.data.to(dtype)


def _float_dtype(model) -> torch.dtype:
    """The dtype of the model's first floating parameter (float32 when it has none)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def points_budget(max_points: int, n_steps: int | None, max_steps: int | None, where: str) -> int:
    """The IG point budget: ``max_points``, or the deprecated ``max_steps`` (else ``n_steps``) when one was given,
    with a ``DeprecationWarning`` naming ``where``. Returns an int."""
    if n_steps is None and max_steps is None:
        return max_points
    old = " and ".join(name for name, v in (("n_steps", n_steps), ("max_steps", max_steps)) if v is not None)
    deprecated(f"{where}: {old} is deprecated and will be removed in the next release; pass max_points (the most "
               "path points IG evaluates; a fixed captum rule uses exactly that many)")
    return max_steps if max_steps is not None else n_steps


def deprecated(message: str) -> None:
    """A ``DeprecationWarning`` attributed to the first caller outside ``interp`` (so Python's default filter shows
    it when that caller is a script or notebook)."""
    inside = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    level, frame = 2, sys._getframe(1)  # stacklevel 2: the caller of this function
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(inside + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, DeprecationWarning, stacklevel=level)


def _integrate(model, tokens, objective, s: IGSettings, progress) -> IGOutput:
    """``embedding_ig`` without the upcast, the former budget names and the warning."""
    if s.rule == "adaptive":
        return _adaptive_embedding_ig(model, tokens, objective, s, progress)
    internal_batch_size = s.internal_batch_size
    if internal_batch_size is None:
        internal_batch_size = auto_batch_size(model, tokens)
    out = _embedding_ig(model, tokens, objective, baseline=s.baseline, n_steps=s.max_points,
                        internal_batch_size=internal_batch_size, method=s.rule, reduction=s.reduction)
    if progress is not None:
        progress(s.max_points, s.max_points)
    return out


def auto_batch_size(model, tokens: torch.Tensor, budget_bytes: int = _PASS_BYTES) -> int:
    """Sequences per forward+backward pass so that its activations stay near ``budget_bytes`` (at least the batch).

    Estimate per sequence of T tokens, float32: 4 copies of the logits (T x vocab: logits, their gradient, the
    objective's softmax), 12 d_model-sized tensors per layer and token (residual, norms, q/k/v, attention
    output, MLP hidden states) and 3 attention maps per layer (heads x T x T). Returns an int >= tokens.shape[0].
    """
    cfg = model.cfg
    t = int(tokens.shape[1])
    per_seq = 4 * (4 * t * int(cfg.d_vocab) + 12 * t * int(cfg.n_layers) * int(cfg.d_model)
                   + 3 * int(cfg.n_layers) * int(cfg.n_heads) * t * t)
    return max(int(tokens.shape[0]), budget_bytes // max(per_seq, 1))


def check_ig_input(tokens: torch.Tensor, internal_batch_size: int | None) -> None:
    """Raise ``InterpError`` unless ``tokens`` is [batch, pos] with pos > 0 and the internal batch holds a batch."""
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise InterpError(f"integrated gradients needs token ids of shape [batch, pos], got {tuple(tokens.shape)}")
    if internal_batch_size is not None and internal_batch_size < tokens.shape[0]:
        raise InterpError(f"internal_batch_size ({internal_batch_size}) must be at least the batch size ({tokens.shape[0]})")


def _setup(model, tokens: torch.Tensor, baseline: str, internal_batch_size: int | None):
    """Check the input and embed it: returns (baseline kind, embedding hook, device, tokens [batch, pos] on it,
    token embeddings [batch, pos, d_model], baseline embeddings [batch, pos, d_model])."""
    check_ig_input(tokens, internal_batch_size)
    kind = resolve_baseline(model, baseline)
    hook = embed_hook_name(model)
    device = model_device(model)
    tokens = tokens.to(device)
    emb = embeddings(model, tokens, hook)
    return kind, hook, device, tokens, emb, baseline_embeddings(model, tokens, emb, kind, hook)


@contextlib.contextmanager
def _input_grads_only(model) -> Iterator[None]:
    """Inside the block gradients are on, for the inputs only: the model's parameters are frozen, then restored."""
    grads_were = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for p, g in zip(model.parameters(), grads_were):
            p.requires_grad_(g)


def _adaptive_embedding_ig(model, tokens: torch.Tensor, objective, s: IGSettings,
                           progress: Callable[[int, int], None] | None) -> IGOutput:
    """IG on the token embeddings with the adaptive, baseline-graded Simpson rule (``quadrature.adaptive_simpson``).

    ``s``: the settings of ``embedding_ig`` (its ``max_points`` already the budget); each of the ``s.max_points``
    points is one forward and backward pass per row. f(x) and f(baseline) come from the same passes as the gradients,
    so the stored completeness error is exactly the one the rule controls. ``s.reduction`` other than "sum": the rule
    integrates every embedding dimension (its completeness check still on their total) and reduces at the end.
    Returns ``IGOutput`` (``n_steps`` = points used).
    """
    reduction = s.reduction
    check_reduction(reduction)
    kind, hook, device, tokens, emb, base = _setup(model, tokens, s.baseline, s.internal_batch_size)
    n, t = tokens.shape
    dtype = emb.dtype
    base = base.double()
    diff = emb.double() - base

    def point(a: torch.Tensor):
        k = a.shape[0]
        e = (base[None] + a.to(device)[:, None, None, None] * diff[None]).reshape(k * n, t, -1).to(dtype)
        e.requires_grad_(True)
        if reduction == "sum":
            return [(hook, lambda act, hook, e=e: e)], e, lambda grad: (grad.double().view(k, n, t, -1) * diff[None]).sum(-1)
        return [(hook, lambda act, hook, e=e: e)], e, lambda grad: (grad.double().view(k, n, t, -1) * diff[None]).flatten(2)

    out = adaptive_path_ig(model, tokens, objective, point, s, baseline=kind, progress=progress)
    if reduction == "sum":
        return out
    per_dim = out.attributions.view(n, t, -1)  # float32 of the float64 integrals: reduce those instead
    return dataclasses.replace(out, attributions=reduce_tokens(per_dim, reduction), signed=per_dim.sum(-1), reduction=reduction)


PathPoint = Callable[[torch.Tensor], tuple[list, torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]]


class PathBudget(Protocol):
    """What ``adaptive_path_ig`` reads of a method's settings (``IGSettings`` and ``AttentionIGSettings`` are ones):
    the most path points, the completeness tolerance that stops the rule earlier, and the sequences per pass."""

    max_points: int
    tolerance: float
    internal_batch_size: int | None


def adaptive_path_ig(model, tokens: torch.Tensor, objective, point: PathPoint, budget: PathBudget, *, baseline: str,
                     progress: Callable[[int, int], None] | None = None) -> IGOutput:
    """The adaptive rule (``quadrature.adaptive_simpson``) for any IG path over ``tokens`` [n, t] (on their device).

    ``point(alphas [k] float64)`` returns the path's points for those α as (forward hooks that put them in the model,
    the leaf tensor they were made from, ``per_token(grad of the leaf) -> [k, n, t]``: the integrand, i.e. the
    gradient times the path's derivative, summed per token); rows are step-major (row r is example r % n).
    ``budget``: at most ``budget.max_points`` points, stopping when every row's completeness bound is below
    ``budget.tolerance``; ``budget.internal_batch_size`` sequences per pass (None: ``auto_batch_size``).
    ``baseline`` names the path's start in the result. ``progress(points so far, budget)`` after each pass.
    Returns ``IGOutput`` (``n_steps`` = points used).
    """
    max_points, tolerance, internal_batch_size = budget.max_points, budget.tolerance, budget.internal_batch_size
    if max_points < 1:
        raise InterpError(f"max_points (the IG point budget) must be at least 1, got {max_points}")
    n, _ = tokens.shape
    per_pass = internal_batch_size or auto_batch_size(model, tokens)
    steps_per_pass = max(1, per_pass // n)
    keep = getattr(objective, "keep", None)
    done = [0]

    def evaluate(alphas: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
        gs, fs = [], []
        for i in range(0, len(alphas), steps_per_pass):
            a = torch.tensor(alphas[i : i + steps_per_pass], dtype=torch.float64)
            k = a.shape[0]
            hooks, leaf, per_token = point(a)
            toks = tokens.repeat(k, 1)  # step-major: row r is example r % n
            out = objective(trailing_logits(model, toks, keep, hooks), toks)
            if out.shape != (k * n,):
                raise InterpError(f"the IG objective must return one value per row, shape [{k * n}], got {tuple(out.shape)}")
            (grad,) = torch.autograd.grad(out.sum(), leaf)
            gs.append(per_token(grad).cpu())
            fs.append(out.detach().double().view(k, n).cpu())
            done[0] += k
            if progress is not None:
                progress(done[0], max_points)
        return torch.cat(gs), torch.cat(fs)

    with _input_grads_only(model):
        res = adaptive_simpson(evaluate, tolerance=tolerance, max_points=max_points)
    return IGOutput(attributions=res.integral.float(), objective=res.f1.float(), baseline_objective=res.f0.float(),
                    baseline=baseline, n_steps=res.n_points, history=res.history)


def _embedding_ig(model, tokens, objective, *, baseline: str, n_steps: int, internal_batch_size: int | None,
                  method: str, reduction: str = "sum") -> IGOutput:
    from captum.attr import IntegratedGradients

    if n_steps < 1:
        raise InterpError(f"max_points must be at least 1, got {n_steps}")
    kind, hook, _, tokens, emb, base = _setup(model, tokens, baseline, internal_batch_size)
    batch = tokens.shape[0]
    dtype = emb.dtype
    keep = getattr(objective, "keep", None)

    def forward(e: torch.Tensor, toks: torch.Tensor) -> torch.Tensor:
        e = e.to(dtype)
        logits = trailing_logits(model, toks, keep, [(hook, lambda act, hook: e)])
        out = objective(logits, toks)
        if out.shape != (toks.shape[0],):
            raise InterpError(f"the IG objective must return one value per row, shape [{toks.shape[0]}], got {tuple(out.shape)}")
        return out.double()

    with _input_grads_only(model):
        attr = IntegratedGradients(forward).attribute(
            emb.double(), baselines=base.double(), additional_forward_args=(tokens,), n_steps=n_steps,
            method=method, internal_batch_size=internal_batch_size,
        )
        with torch.no_grad():
            ends = forward(torch.cat([emb, base]).double(), torch.cat([tokens, tokens]))
    attr = attr.detach()
    out = IGOutput(
        attributions=reduce_tokens(attr, reduction).float().cpu(),
        objective=ends[:batch].float().cpu(),
        baseline_objective=ends[batch:].float().cpu(),
        baseline=kind,
        n_steps=n_steps,
        reduction=reduction,
        signed=None if reduction == "sum" else attr.sum(-1).float().cpu(),
    )
    return out
