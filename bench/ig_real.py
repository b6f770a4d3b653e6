"""Integrated Gradients on real LMs (SmolLM2-135M, Gemma 3 270M): points needed, time, completeness error, memory.

For each prompt (the first ``--tokens`` tokens of prose paragraphs from Python's reference manual, target = the
model's greedy next token) it runs the default call ``attribute(model, prompt, method="integrated_gradients")``
and records the interpolation points used, the wall time, the completeness error and the process's peak RSS.
For ``--curve`` prompts it also runs the adaptive rule with tolerance 0 (the same refinement sequence) and
prints the completeness error after each round, and captum's fixed Gauss-Legendre rule at a few step counts.

    .venv/bin/python bench/ig_real.py --model smollm2-135m --prompts 20 --threads 1
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import warnings

import torch


def prompts_for(model, n: int, n_tokens: int) -> list[torch.Tensor]:
    from interp.corpora import prose

    out = []
    for par in prose("train"):
        ids = model.to_tokens(" ".join(par.split()))[0, :n_tokens]
        if ids.shape[0] == n_tokens:
            out.append(ids)
        if len(out) == n:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="skip the first prompts (resume a run)")
    ap.add_argument("--curve", type=int, default=2, help="prompts that also get the error-vs-points curve")
    ap.add_argument("--curve-budget", type=int, default=200)
    ap.add_argument("--objective", default="prob", help="IG objective: prob (the default of attribute), logprob or logit")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    import interp
    from interp.attribution import attribute, embedding_ig
    from interp.attribution.methods import TargetObjective

    model = interp.load_model(args.model, device="cpu")
    rows = []
    print(f"## {args.model}, {args.threads} thread(s), {args.tokens}-token prompts, objective {args.objective}")
    print("| prompt | points | error | time (s) | peak RSS (GB) |\n|---|---|---|---|---|")
    for i, ids in enumerate(prompts_for(model, args.prompts, args.tokens)):
        if i < args.start:
            continue
        t = time.perf_counter()
        a = attribute(model, ids, method="integrated_gradients", objective=args.objective)
        dt = time.perf_counter() - t
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        rows.append((a.info["n_steps"], float(a.completeness_error.max()), dt))
        print(f"| {i} | {a.info['n_steps']} | {rows[-1][1]:.2e} | {dt:.1f} | {rss:.2f} |", flush=True)
        if i < args.curve:
            fn = TargetObjective([ids.shape[0]], [int(model(ids[None])[0, -1].argmax())], args.objective)
            out = embedding_ig(model, ids[None], fn, max_steps=args.curve_budget, tolerance=0.0, warn_threshold=None)
            print("  adaptive curve (points: error, bound): "
                  + ", ".join(f"{n}: {e:.1e} ({b:.1e})" for n, b, e in out.history), flush=True)
            for n in (16, 32, 64):
                g = embedding_ig(model, ids[None], fn, rule="gausslegendre", max_points=n, warn_threshold=None)
                print(f"  gausslegendre {n}: error {float(g.completeness_error):.1e}", flush=True)
    pts, errs, times = zip(*rows)
    print(f"\npoints median {statistics.median(pts)}, worst {max(pts)}; error median {statistics.median(errs):.1e}, "
          f"worst {max(errs):.1e}; time median {statistics.median(times):.1f} s, worst {max(times):.1f} s; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")


if __name__ == "__main__":
    main()
