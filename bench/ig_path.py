"""Where along its path Integrated Gradients earns its credit on a real LM's induction prompts (SmolLM2 by default).

For each induction prompt (``interp.attribution.truth``) this runs the default IG call's rule (probability
objective, ``zero_keep_bos`` baseline, adaptive Simpson to 1% completeness) with the per-dimension integrand kept,
then prints per prompt and in total:

- f(α) = p(target) at α = 0.01, 0.1, 0.25, 0.5 and 1 along the path (the evaluated point nearest each);
- the rank of the deciding occurrence (B's first occurrence) from the whole path and from [β, 1] alone
  (β = 0.25, 0.5, 0.75): where the ranking is decided;
- its rank under other sums over the embedding dimension (signed sum, the default; L2 norm, as inseq aggregates;
  positive part; sum of |.|).

    python bench/ig_path.py [--prompts 25] [--threads 2] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BETAS = (0.0, 0.25, 0.5, 0.75)
PROBES = (0.01, 0.1, 0.25, 0.5, 1.0)
SUMS = {"signed sum": lambda a: a.sum(-1), "L2 norm": lambda a: a.norm(dim=-1),
        "positive part": lambda a: a.clamp_min(0).sum(-1), "sum of |.|": lambda a: a.abs().sum(-1)}


def path_ig(model, tokens: torch.Tensor, target: int, tolerance: float = 0.01, max_points: int = 800):
    """The default IG rule on ``tokens`` [T] with the integrand kept per dimension: returns (intervals [(a, c)],
    per-interval Simpson estimates [J, T, d], {α: f(α)}), from one ``adaptive_simpson`` run."""
    from interp.attribution import ig as IG
    from interp.attribution import quadrature as Q
    from interp.attribution.forward import trailing_logits
    from interp.attribution.methods import TargetObjective

    objective = TargetObjective([tokens.shape[0]], [target], "prob")
    _, hook, _, toks1, emb, base = IG._setup(model, tokens[None], "zero_keep_bos", None)
    t, d = emb.shape[1:]
    diff = emb.double() - base.double()
    cache: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}

    def evaluate(alphas: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
        gs, fs = [], []
        for i in range(0, len(alphas), 32):
            a = torch.tensor(alphas[i : i + 32], dtype=torch.float64)
            e = (base.double() + a[:, None, None] * diff[0]).to(emb.dtype).requires_grad_(True)  # [k, T, d]
            toks = toks1.repeat(a.shape[0], 1)
            out = objective(trailing_logits(model, toks, objective.keep, [(hook, lambda act, hook, e=e: e)]), toks)
            (grad,) = torch.autograd.grad(out.sum(), e)
            gs.append((grad.double() * diff).reshape(a.shape[0], 1, t * d))  # rows = 1, "tokens" = T * d
            fs.append(out.detach().double()[:, None])
        g, f = torch.cat(gs), torch.cat(fs)
        for j, x in enumerate(alphas):
            cache[x] = (g[j], f[j])
        return g, f

    with IG._input_grads_only(model):
        res = Q.adaptive_simpson(evaluate, tolerance=tolerance, max_points=max_points)
    intervals = list(zip(res.breakpoints, res.breakpoints[1:]))
    est, _ = Q._estimates(intervals, cache)  # [J, 1, T * d]
    return intervals, est[:, 0].view(len(intervals), t, d), {x: float(v[1][0]) for x, v in cache.items()}


def rank(scores: torch.Tensor, source: int) -> int:
    """1-based rank of ``source`` among positions 1.. (BOS, position 0, has zero credit by construction)."""
    s = scores.clone()
    s[0] = -float("inf")
    return s.argsort(descending=True).tolist().index(source) + 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--prompts", type=int, default=25)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default="smollm2-135m", help="a model name or path for interp.load_model")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from interp.attribution.truth import induction_prompts
    from interp.models import load_model

    model = load_model(args.model, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prompts = induction_prompts(model, args.prompts)
    by_beta = {b: [] for b in BETAS}
    by_sum = {k: [] for k in SUMS}
    f_at = {x: [] for x in PROBES}
    for i, pr in enumerate(prompts):
        t0 = time.perf_counter()
        intervals, est, f = path_ig(model, pr.tokens, pr.target_id)
        src = pr.sources[0]
        starts = torch.tensor([a for a, _ in intervals])
        for b in BETAS:
            by_beta[b].append(rank(est[starts >= b].sum((0, 2)).float(), src))
        whole = est.sum(0)
        for k, fn in SUMS.items():
            by_sum[k].append(rank(fn(whole).float(), src))
        for x in PROBES:
            f_at[x].append(f[min(f, key=lambda a, x=x: abs(a - x))])
        print(f"{i:3d} ranks from [beta, 1]: {[by_beta[b][-1] for b in BETAS]}  by sum: "
              f"{[by_sum[k][-1] for k in SUMS]}  f: {[round(f_at[x][-1], 4) for x in PROBES]}  "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    n = len(prompts)

    def rates(r: list[int]) -> str:
        return f"top-1 {sum(x == 1 for x in r) / n:.2f}, top-3 {sum(x <= 3 for x in r) / n:.2f}"

    print(f"\n{n} induction prompts, IG default rule (prob objective, zero_keep_bos, 1% completeness)")
    for b in BETAS:
        same = sum(x == y for x, y in zip(by_beta[b], by_beta[0.0]))
        print(f"credit from [{b}, 1] only: {rates(by_beta[b])}; rank equal to the whole path's on {same} of {n}")
    for k in SUMS:
        print(f"sum over d_model = {k}: {rates(by_sum[k])}")
    for x in PROBES:
        share = [fx / f1 for fx, f1 in zip(f_at[x], f_at[1.0])]
        print(f"f({x}) / f(1): median {statistics.median(share):.4f}, max {max(share):.4f}")


if __name__ == "__main__":
    main()
