"""Evaluating steering: multiple-choice accuracy, log-prob gap and perplexity on ordinary text per alpha."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.models import model_name
from interp.results import Result
from interp.steering.data import ContrastExample
from interp.steering.scoring import contrast_gaps, encode, mean_nll
from interp.steering.vectors import SteeringVectors, check_alpha
from interp.validate import check_int

__all__ = ["SteeringEval", "evaluate"]


@dataclass(frozen=True)
class SteeringEval(Result):
    """Steering evaluated per method and per alpha."""

    model: str
    "name of the model"
    methods: list[str]
    '[method] names of the vector sets (e.g. "grains", "mean_difference")'
    alphas: list[float]
    "[alpha] the steering strengths"
    accuracy: torch.Tensor
    "[method, alpha] fraction of examples with log P(preferred) > log P(dispreferred) (ties count as wrong)"
    mean_gap: torch.Tensor
    "[method, alpha] mean of that log-prob difference (nats)"
    perplexity: torch.Tensor
    "[method, alpha] exp(mean next-token NLL) on the fluency texts"
    gaps: torch.Tensor
    "[method, alpha, example] the per-example differences"
    prompts: list[str]
    "[example] the example prompts"
    layers: dict
    "steered layers per method"
    n_fluency_tokens: int = 0
    "predicted tokens behind each perplexity"
    _shapes = {"accuracy": "method alpha", "mean_gap": "method alpha", "perplexity": "method alpha",
               "gaps": "method alpha example", "methods": "method", "alphas": "alpha", "prompts": "example"}

    def baseline_accuracy(self) -> float:
        """Accuracy without steering (alpha = 0, identical for every method)."""
        return float(self.accuracy[0, self.alphas.index(0.0)]) if 0.0 in self.alphas else float("nan")

    def baseline_perplexity(self) -> float:
        return float(self.perplexity[0, self.alphas.index(0.0)]) if 0.0 in self.alphas else float("nan")

    def best(self, method: str, max_ppl_increase: float = 0.10) -> dict:
        """The alpha of ``method`` with the highest accuracy among those whose perplexity rises less than
        ``max_ppl_increase`` (relative) over alpha = 0; ties go to the smaller |alpha|. Returns a dict with
        alpha, accuracy, mean_gap, perplexity, ppl_increase."""
        m = self.methods.index(method)
        base = self.baseline_perplexity()
        best = None
        for j, a in sorted(enumerate(self.alphas), key=lambda t: abs(t[1])):
            rise = float(self.perplexity[m, j]) / base - 1
            if rise < max_ppl_increase and (best is None or float(self.accuracy[m, j]) > best["accuracy"]):
                best = dict(alpha=a, accuracy=float(self.accuracy[m, j]), mean_gap=float(self.mean_gap[m, j]),
                            perplexity=float(self.perplexity[m, j]), ppl_increase=rise)
        return best or {}

    def rows(self) -> list[list]:
        """Table rows: method, alpha, accuracy, mean gap, perplexity, relative perplexity change."""
        base = self.baseline_perplexity()
        return [[m, a, float(self.accuracy[i, j]), float(self.mean_gap[i, j]), float(self.perplexity[i, j]),
                 float(self.perplexity[i, j]) / base - 1] for i, m in enumerate(self.methods) for j, a in enumerate(self.alphas)]


def _named(vectors) -> dict[str, SteeringVectors]:
    if isinstance(vectors, SteeringVectors):
        return {vectors.method: vectors}
    if isinstance(vectors, Mapping):
        out = dict(vectors)
    elif isinstance(vectors, Sequence):
        out = {}
        for v in vectors:
            name, n = v.method, 2
            while name in out:
                name, n = f"{v.method}_{n}", n + 1
            out[name] = v
    else:
        raise InterpError("vectors must be SteeringVectors, a list of them or a dict name -> SteeringVectors")
    if not out or not all(isinstance(v, SteeringVectors) for v in out.values()):
        raise InterpError("vectors must be SteeringVectors, a list of them or a dict name -> SteeringVectors")
    return out


def evaluate(model, vectors, examples: Sequence[ContrastExample], *, alphas: Sequence[float],
             fluency_texts: Sequence[str], layers: Sequence[int] | None = None, norm_mode: str | None = None,
             batch_size: int = 64, progress: bool = True) -> SteeringEval:
    """Steer ``model`` with each vector set at each alpha and score ``examples`` and ``fluency_texts``.

    ``vectors``: one ``SteeringVectors``, a list, or a dict name -> vectors (e.g. GrAInS and the mean-difference
    baseline side by side). ``alphas``: steering strengths (0 is added when missing, as the unsteered
    reference). ``layers``: restrict every set to these layers. Returns ``SteeringEval`` ([method, alpha] tables).
    """
    sets = _named(vectors)
    examples = list(examples)
    if not examples:
        raise InterpError("no contrast examples to evaluate on")
    if isinstance(alphas, (str, bytes)) or not isinstance(alphas, Sequence | torch.Tensor):
        raise InterpError(f"alphas must be a list of numbers, got {type(alphas).__name__}")
    alphas = sorted({0.0, *(check_alpha(a) for a in (alphas.tolist() if isinstance(alphas, torch.Tensor) else alphas))})
    batch_size = check_int("batch_size", batch_size, minimum=1)
    enc = [encode(model, e) for e in examples]
    texts = list(fluency_texts)
    n_m, n_a = len(sets), len(alphas)
    acc, gap, ppl = torch.zeros(n_m, n_a), torch.zeros(n_m, n_a), torch.zeros(n_m, n_a)
    gaps = torch.zeros(n_m, n_a, len(enc))
    n_tok = 0
    base = None
    bar = tqdm(total=n_m * n_a, desc="steering eval", disable=not progress)
    for i, vec in enumerate(sets.values()):
        for j, a in enumerate(alphas):
            if a == 0.0 and base is not None:  # alpha = 0 is the identity for every method
                g, nll = base
            else:
                with vec.steer(model, a, layers=layers, norm_mode=norm_mode):
                    g = contrast_gaps(model, enc, batch_size=batch_size)
                    nll, n_tok = mean_nll(model, texts, batch_size=max(1, batch_size // 4))
                if a == 0.0:
                    base = (g, nll)
            gaps[i, j] = g.float()
            acc[i, j] = (g > 0).double().mean().float()
            gap[i, j] = g.mean().float()
            ppl[i, j] = float(torch.tensor(nll).exp())
            bar.update()
    bar.close()
    used = {name: (list(layers) if layers is not None else v.layers) for name, v in sets.items()}
    return SteeringEval(model_name(model), list(sets), alphas, acc, gap, ppl, gaps, [e.prompt for e in examples], used, n_tok)
