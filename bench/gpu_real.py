"""The real-model attribution and index-build benches on a GPU, fp32 and bf16, in one run (SmolLM2-135M).

Run on a machine with a CUDA GPU (a lent device machine runs it as one prepared script):

    python bench/gpu_real.py --out bench/results/gpu_real.json [--budget 300]

Per dtype: forward ms per 20-token row (bridge, all logits vs ``logits_to_keep=1``); the default
``attribute(..., method="integrated_gradients")`` on 20-token prose prompts (points, completeness error, seconds,
peak GPU memory); the default ``attribute(..., method="reagent")`` (seconds, model sequences, converged, same seed
twice bit for bit); induction ground truth (B's first occurrence in the top 3) for IG and ReAGent; a local-backend
LatentLens index build (layer 20, every token stored) in tokens/s. Each section stops starting prompts once its share
of ``--budget`` seconds is spent and says how many it ran. The CPU numbers are in ig_real.md / attribution_real.md /
scale.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_reset() -> None:
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _peak_gb() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")


def _timed(fn):
    """(fn(), seconds) with the device synchronised before and after and the peak-memory counter reset."""
    _peak_reset()
    _sync()
    t0 = time.perf_counter()
    out = fn()
    _sync()
    return out, time.perf_counter() - t0


def forward(model, batches: list[int]) -> dict:
    """ms per 20-token row, median of 10, at each batch size: all logits vs logits_to_keep=1."""
    g = torch.Generator().manual_seed(0)
    out = {}
    with torch.no_grad():
        for n in batches:
            x = torch.randint(0, model.cfg.d_vocab, (n, 20), generator=g).to(model.cfg.device)
            row = {}
            for name, fn in (("full", lambda x: model(x)), ("keep1", lambda x: model(x, logits_to_keep=1))):
                fn(x)
                ts = []
                for _ in range(10):
                    _sync()
                    t0 = time.perf_counter()
                    fn(x)
                    _sync()
                    ts.append(time.perf_counter() - t0)
                row[name] = statistics.median(ts) * 1000 / n
            out[n] = row
            print(f"  forward batch {n:4d}: full {row['full']:.3f} ms/row, logits_to_keep=1 {row['keep1']:.3f} ms/row", flush=True)
    return out


def ig(model, prompts, deadline: float, upcast: bool = True) -> dict:
    from interp.attribution import attribute

    rows = []
    for ids in prompts:
        if time.perf_counter() > deadline:
            break
        a, dt = _timed(lambda ids=ids: attribute(model, ids, method="integrated_gradients", upcast=upcast))
        rows.append({"points": a.info["n_steps"], "error": float(a.completeness_error.max()), "s": dt, "peak_gb": _peak_gb()})
    if rows:
        label = "default" if upcast else "upcast=False"
        print(f"  IG {label}: {len(rows)} prompts; points median {statistics.median(r['points'] for r in rows)}, worst "
              f"{max(r['points'] for r in rows)}; error median {statistics.median(r['error'] for r in rows):.1e}, worst "
              f"{max(r['error'] for r in rows):.1e}; s median {statistics.median(r['s'] for r in rows):.2f}, worst "
              f"{max(r['s'] for r in rows):.2f}; peak GPU {max(r['peak_gb'] for r in rows):.2f} GB", flush=True)
    return {"rows": rows}


def reagent(model, prompts, deadline: float) -> dict:
    from interp.attribution import attribute

    rows, same = [], []
    for k, ids in enumerate(prompts):
        if time.perf_counter() > deadline:
            break
        a, dt = _timed(lambda ids=ids, k=k: attribute(model, ids, method="reagent", seed=k))
        rows.append({"s": dt, "sequences": a.info["forward_sequences"], "converged": bool(all(a.info["converged"])),
                     "steps": a.info["steps"], "peak_gb": _peak_gb()})
        if k < 2:  # same seed again: bit-equal scores?
            b = attribute(model, ids, method="reagent", seed=k)
            same.append(bool(torch.equal(a.scores, b.scores)))
    if rows:
        print(f"  ReAGent default: {len(rows)} prompts; s median {statistics.median(r['s'] for r in rows):.2f}, worst "
              f"{max(r['s'] for r in rows):.2f}; sequences median {statistics.median(r['sequences'] for r in rows)}; "
              f"converged {sum(r['converged'] for r in rows)}/{len(rows)}; same seed bit-equal {same}; peak GPU "
              f"{max(r['peak_gb'] for r in rows):.2f} GB", flush=True)
    return {"rows": rows, "same_seed_equal": same}


def truth(model, n: int, seconds: float) -> dict:
    """Induction top-3 rate of IG and ReAGent; each method gets half of ``seconds``."""
    from interp.attribution import attribute
    from interp.attribution.truth import induction_prompts

    prompts = induction_prompts(model, n)
    out = {}
    for method in ("integrated_gradients", "reagent"):
        hits = done = 0
        deadline = time.perf_counter() + seconds / 2
        for k, p in enumerate(prompts):
            if time.perf_counter() > deadline:
                break
            kw = {"seed": k} if method == "reagent" else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = attribute(model, p.tokens, p.target_id, method=method, **kw)
            top = a.row().float().topk(3).indices.tolist()
            hits += bool(set(top) & set(p.sources))
            done += 1
        out[method] = {"prompts": done, "top3": hits / done if done else float("nan")}
        print(f"  induction top-3 ({method}): {out[method]['top3']:.2f} over {done} prompts", flush=True)
    return out


def index_build(model, docs: int) -> dict:
    from interp.lens.bundled import stories_texts
    from interp.scale import build_index

    texts = stories_texts(docs, "train")
    res = []
    for _ in range(2):  # the first build pays the warm-up
        out = Path(tempfile.mkdtemp(prefix="gpu_idx_")) / "idx"
        _sync()
        t0 = time.perf_counter()
        index = build_index(model, texts, out=out, layers=[20], backend="local", shard_docs=32, batch_size=16, progress=False,
                            max_per_token=None, dedup=False, min_pos=0)
        _sync()
        dt = time.perf_counter() - t0
        tokens = sum(int(s.get("doc_lengths").sum()) for s in index.shards)
        res.append({"s": dt, "tokens": tokens, "rows": len(index), "tok_per_s": tokens / dt})
    print(f"  index build (local, layer 20, all tokens, {docs} docs, {res[-1]['tokens']} tokens): "
          f"{res[-1]['tok_per_s']:.0f} tok/s (first build {res[0]['tok_per_s']:.0f})", flush=True)
    return {"builds": res}


def _save(path: str | None, results: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(results, indent=1, default=str))


def run_dtype(args, name: str, first: bool, per: float, run: dict, save) -> None:
    """Every section for one dtype, into ``run`` (``save()`` after each); a section that raises records its error
    and the others still run."""
    import interp
    from bench.ig_real import prompts_for

    print(f"## {args.model}, {name}, {args.device}", flush=True)
    t0 = time.perf_counter()
    model = interp.load_model(args.model, device=args.device, dtype=getattr(torch, name))
    run["load_s"] = time.perf_counter() - t0
    prompts = [p.cpu() for p in prompts_for(model, args.prompts, 20)]
    sections = [("forward", lambda: forward(model, [int(b) for b in args.forward_batches.split(",")])),
                ("ig", lambda: ig(model, prompts, time.perf_counter() + 0.2 * per)),
                ("reagent", lambda: reagent(model, prompts, time.perf_counter() + 0.25 * per))]
    if name != "float32":
        sections.insert(2, ("ig_no_upcast", lambda: ig(model, prompts, time.perf_counter() + 0.2 * per, upcast=False)))
    if first:
        sections += [("truth", lambda: truth(model, args.truth_prompts, 0.3 * per)),
                     ("index", lambda: index_build(model, args.docs))]
    for key, fn in sections:
        try:
            run[key] = fn()
        except Exception as e:  # one broken section must not lose the others' numbers
            traceback.print_exc()
            run[key] = {"error": f"{type(e).__name__}: {e}"}
        save()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtypes", default="float32,bfloat16")
    ap.add_argument("--prompts", type=int, default=20)
    ap.add_argument("--truth-prompts", type=int, default=50)
    ap.add_argument("--docs", type=int, default=1024)
    ap.add_argument("--forward-batches", default="8,64,256")
    ap.add_argument("--budget", type=float, default=300, help="seconds for the whole run (sections stop starting prompts)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    t_start = time.perf_counter()
    env = {"torch": torch.__version__, "device": args.device,
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    print(env, flush=True)
    results = {"env": env, "runs": {}}
    dtypes = args.dtypes.split(",")
    # budget shares per dtype: IG 20% (and as much again for bf16 without the upcast), ReAGent 25%, truth 30% (the
    # first dtype only), the rest forward + index build (the first dtype only) + loading
    per = args.budget / len(dtypes)
    for i, name in enumerate(dtypes):
        results["runs"][name] = {}
        run_dtype(args, name, first=i == 0, per=per, run=results["runs"][name], save=lambda: _save(args.out, results))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    print(f"total {time.perf_counter() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
