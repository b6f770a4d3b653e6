"""Rank attribution methods on a prompt set: ground-truth top-1 rate and faithfulness.

``compare(model, prompts, methods)`` attributes every prompt's target with every method and returns a
``Comparison`` (one row per method). Given ``truth.TruthPrompt`` records (the positions that decide each target,
e.g. from ``ground_truth_examples`` on the ``stories`` model, or ``truth.induction_prompts`` / ``fact_prompts`` on a
real model) it reports how often each method ranks one of them first; with ``faithful=True`` it adds the faithfulness
metrics (``faithfulness``), averaged over prompts.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from interp.attribution.faithfulness import faithfulness
from interp.attribution.registry import attribute, method_names
from interp.attribution.truth import TruthPrompt
from interp.errors import InterpError
from interp.models import model_device, model_name
from interp.results import Result

__all__ = ["Comparison", "compare", "ground_truth_examples"]



def ground_truth_examples(model, n: int = 100, seed: int = 0, *, width: int | None = None,
                          correct_only: bool = False) -> list[TruthPrompt]:
    """``n`` decided prompts of the stories corpus (``interp.zoo.ground_truth.decided_prompts``) for ``model``, as
    ``truth.TruthPrompt`` (the one ground-truth record: ``text``, ``tokens``, ``target_id`` and the deciding position
    in ``sources``).

    The target is the first token of the decided word (with its leading space); only prompts where the model's
    tokens agree with the tokenizer's are kept. ``width``: cut each prompt to its last ``width - 1`` tokens (plus
    BOS), skipping prompts whose deciding token is earlier. ``correct_only``: keep only prompts on which the model's
    greedy next token is the decided word. Meant for the bundled ``stories`` model.
    """
    if width is not None or correct_only:
        return _cropped(model, n, seed, width, correct_only)
    from interp.zoo.ground_truth import decided_prompts

    tok = model.tokenizer
    out: list[TruthPrompt] = []
    for dp in decided_prompts(max(n * 2, n + 20), seed=seed):
        tokens = model.to_tokens(dp.prompt)[0].cpu()  # tokenised once; kept only where the tokenizer agrees
        if tokens.tolist() != tok(dp.prompt).input_ids:
            continue
        try:
            src = dp.source_token(tok)
        except ValueError:
            continue
        target = tok(" " + dp.target, add_special_tokens=False).input_ids
        if target:
            out.append(TruthPrompt(tokens, int(target[0]), (int(src),), dp.kind, dp.prompt))
        if len(out) == n:
            break
    if not out:
        raise InterpError("no ground-truth prompt could be tokenised by this model; use the bundled 'stories' model")
    return out


@torch.no_grad()
def _cropped(model, n: int, seed: int, width: int | None, correct_only: bool) -> list[TruthPrompt]:
    out: list[TruthPrompt] = []
    for e in ground_truth_examples(model, 4 * n + 20, seed):
        ids = e.tokens
        L, src, prompt = len(ids), e.sources[0], e.text
        if width is not None and L > width:
            if src < L - (width - 1):
                continue
            ids, src = torch.cat([ids[:1], ids[-(width - 1):]]), src - (L - width)
            prompt = model.tokenizer.decode(ids[1:]).strip()
            if model.to_tokens(prompt)[0].tolist() != ids.tolist():
                continue
        if correct_only and int(model(ids[None].to(model_device(model)))[0, -1].argmax()) != e.target_id:
            continue
        out.append(TruthPrompt(ids.cpu(), e.target_id, (int(src),), e.kind, prompt))
        if len(out) == n:
            break
    return out


@dataclass(frozen=True)
class Comparison(Result):
    """Methods compared on a prompt set."""

    model: str
    "name of the model"
    methods: list[str]
    "[method] method names, one per row"
    metrics: list[str]
    "[metric] column names"
    values: torch.Tensor
    "[method, metric] means over the prompts (NaN where a metric does not apply)"
    top1: torch.Tensor
    "[method, prompt] 1.0 where the method ranked the ground-truth source first (``[method, 0]`` without ground truth)"
    seconds: torch.Tensor
    "[method] mean wall time per prompt"
    n_prompts: int
    "prompts used"
    _shapes = {"values": "method metric", "top1": "method _", "seconds": "method", "methods": "method", "metrics": "metric"}

    def column(self, metric: str) -> dict[str, float]:
        """{method: value} of one metric."""
        j = self.metrics.index(metric)
        return {m: float(self.values[i, j]) for i, m in enumerate(self.methods)}

    def ranking(self, metric: str | None = None) -> list[str]:
        """Methods best first by ``metric`` (default: top-1 rate when there is ground truth, else soft_nc_vs_random)."""
        metric = metric or ("top1_rate" if "top1_rate" in self.metrics else "soft_nc_vs_random")
        col = self.column(metric)
        return sorted(self.methods, key=lambda m: -col[m] if math.isfinite(col[m]) else math.inf)

    def rows(self) -> list[list]:
        """Table rows: method, then every metric (rounded to 4 digits), then seconds per prompt."""
        return [[m, *[round(float(v), 4) for v in self.values[i]], round(float(self.seconds[i]), 3)]
                for i, m in enumerate(self.methods)]


def compare(model, prompts: list[str] | list[TruthPrompt], methods: list[str] | Mapping[str, Mapping] | None = None, *,
            targets: list | None = None, faithful: bool = True, n_samples: int = 4, progress: bool = True) -> Comparison:
    """Attribute each prompt with each method; returns a ``Comparison`` ranked by ``Comparison.ranking()``.

    ``prompts``: ``truth.TruthPrompt`` records (each with the positions that decide its target: a hit is a top-1 token
    among its ``sources``; ``top1_rate`` is then a column) or strings (with optional ``targets``, default the greedy
    next token; no ground truth). ``methods``: names (default every registered method), or {name: settings} with each
    method's settings (a settings instance such as ``REAGENT_FAST`` or a dict, e.g. ``{"reagent": {"num_probes": 8}}``).
    ``faithful``: add the faithfulness metrics (``faithfulness`` with ``n_samples`` random draws), averaged over prompts.
    """
    import time

    sources = None
    if prompts and isinstance(prompts[0], TruthPrompt):
        if targets is not None:
            raise InterpError("compare(): TruthPrompt records carry their targets; do not pass targets as well")
        targets = [p.target_id for p in prompts]
        sources = [p.sources for p in prompts]
        prompts = [p.text for p in prompts]
    if not prompts:
        raise InterpError("compare() needs at least one prompt")
    settings = dict(methods) if isinstance(methods, Mapping) else {m: {} for m in (methods or method_names())}
    methods = list(settings)
    if not methods:
        raise InterpError("compare() needs at least one method: name them, or leave methods out for every registered one")
    targets = targets or [None] * len(prompts)
    metrics = (["top1_rate"] if sources is not None else []) + (
        ["soft_ns", "soft_nc", "hard_sufficiency", "hard_comprehensiveness", "soft_ns_vs_random", "soft_nc_vs_random",
         "hard_sufficiency_vs_random", "hard_comprehensiveness_vs_random"] if faithful else [])
    values = torch.full((len(methods), len(metrics)), math.nan)
    top1 = torch.zeros(len(methods), len(prompts) if sources is not None else 0)
    seconds = torch.zeros(len(methods))
    bar = tqdm(total=len(methods) * len(prompts), desc="compare", disable=not progress)
    for i, method in enumerate(methods):
        sums: dict[str, float] = {}
        for k, (prompt, target) in enumerate(zip(prompts, targets)):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = attribute(model, prompt, target, method=method, **settings[method])
            seconds[i] += time.perf_counter() - t0
            if sources is not None:
                top1[i, k] = float(a.top(1)[0] in sources[k])
            if faithful:
                f = faithfulness(model, a, n_samples=n_samples, seed=k).to_dict()
                for m in metrics:
                    if m in f:
                        sums[m] = sums.get(m, 0.0) + f[m]
            bar.update(1)
        for j, m in enumerate(metrics):
            if m == "top1_rate":
                values[i, j] = top1[i].mean()
            elif m in sums:
                values[i, j] = sums[m] / len(prompts)
        seconds[i] /= len(prompts)
    bar.close()
    return Comparison(model_name(model), list(methods), metrics, values, top1, seconds, len(prompts))
