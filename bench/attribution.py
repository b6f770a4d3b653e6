"""Benchmarks of interp.attribution on the bundled ``stories`` model.

    python bench/attribution.py speed [--prompts 10 --repeats 3 --device cpu]   # ReAGent: ours vs inseq
    python bench/attribution.py groundtruth [--prompts 100]                      # top-1 rate of every method

``speed`` runs our ReAGent as shipped (lean last-position forward, planned calls), the same with the Hugging Face
forward (``lean=False``), the reference step-by-step loop (``batched=False, lean=False``; same draws, same numbers)
and inseq's ``reagent`` (built by bench/setup_inseq.sh in bench/.venv-inseq and run in a subprocess) with the
same settings: replace
ratio 0.3, keep-n 5, stop top-3, 16 probes, 3000 max steps, a uniform sampler (inseq's POS-tag sampler needs NLTK
tagger data that cannot be downloaded here, so its ``POSTagTokenSampler`` is replaced by a ``TokenSampler``
subclass that draws uniformly over the non-special vocabulary, like ours). It prints medians over repeats of the
wall time per prompt and the model calls / sequences per prompt, and the faithfulness of ours and inseq's scores
(``interp.attribution.faithfulness`` for both). It ends with a floor: the FLOPs of the matrix products of one
lean forward at the best matrix-product throughput measured here, times the fewest sequences any schedule needs
(the reference loop's): the best any float32 implementation of the same algorithm could do on this machine.

Prompts: ground-truth prompts of the stories corpus (``interp.zoo.ground_truth.decided_prompts``), cut to BOS + the
last 23 tokens when the deciding token is among them, kept when the model's greedy next token is the decided word.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETTINGS = dict(replace_ratio=0.3, keep_top_n=5, stop_top_k=3, num_probes=16, max_steps=3000)


def examples(model, n: int, width: int = 24):
    """[(ids [T], target id, source position, kind)] of cropped decided prompts the model gets right."""
    from interp.attribution.compare import ground_truth_examples

    out = []
    for e in ground_truth_examples(model, 4 * n + 20):
        ids = model.to_tokens(e.text)[0]
        L, src = len(ids), e.sources[0]
        if L > width:
            if src < L - (width - 1):
                continue
            ids, src = torch.cat([ids[:1], ids[-(width - 1):]]), src - (L - width)
        with torch.no_grad():
            if int(model(ids[None])[0, -1].argmax()) != e.target_id:
                continue
        out.append((ids.cpu(), e.target_id, src, e.kind))
        if len(out) == n:
            break
    return out


# ---- inseq worker (runs inside bench/.venv-inseq) ----------------------------------------------------------
def inseq_worker(job: str) -> None:
    torch.set_num_threads(1)
    import inseq
    from inseq.attr.feat.ops import reagent as reagent_module
    from inseq.attr.feat.ops.reagent_core.token_sampler import TokenSampler

    class UniformTokenSampler(TokenSampler):
        """Uniform over the non-special vocabulary (stands in for the POS-tag sampler, which needs NLTK data)."""

        def __init__(self, tokenizer, identifier=None, device=None, **_):
            ok = torch.ones(len(tokenizer), dtype=torch.bool)
            ok[tokenizer.all_special_ids] = False
            self.ids = ok.nonzero()[:, 0]

        def __call__(self, input, **_):
            return self.ids[torch.randint(0, len(self.ids), input.shape)].to(input.device)

    reagent_module.POSTagTokenSampler = UniformTokenSampler
    spec = json.loads(Path(job).read_text())
    s = spec["settings"]
    model = inseq.load_model(spec["model_dir"], "reagent", keep_top_n=s["keep_top_n"], stopping_condition_top_k=s["stop_top_k"],
                             replacing_ratio=s["replace_ratio"], max_probe_steps=s["max_steps"], num_probes=s["num_probes"],
                             device=spec.get("device", "cpu"))
    hf, count = model.model, {"calls": 0, "rows": 0}
    forward = hf.forward

    def counted(*a, **k):
        ids = k.get("input_ids", a[0] if a else None)
        ids = ids if ids is not None else k["inputs_embeds"]
        count["calls"] += 1
        count["rows"] += ids.shape[0]
        return forward(*a, **k)

    hf.forward = counted
    results = []
    for rep in range(spec["repeats"]):
        for k, (prompt, full) in enumerate(zip(spec["prompts"], spec["full"])):
            torch.manual_seed(1000 * rep + k)
            count.update(calls=0, rows=0)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = model.attribute(prompt, full, show_progress=False)
            dt = time.perf_counter() - t0
            a = out.sequence_attributions[0]
            n_src = len(a.target) - 1
            scores = a.target_attributions[:n_src, 0, 0].tolist()
            results.append({"rep": rep, "k": k, "seconds": dt, "calls": count["calls"], "rows": count["rows"], "scores": scores,
                            "tokens": [t.id for t in a.target]})
            print(f"inseq prompt {k} rep {rep}: {dt:.1f} s, {count['rows']} sequences", file=sys.stderr, flush=True)
    Path(spec["out"]).write_text(json.dumps(results))


def run_inseq(model_dir: str, model, exs, repeats: int, device: str = "cpu"):
    py = ROOT / "bench" / ".venv-inseq" / "bin" / "python"
    if not py.exists():
        print(f"inseq venv missing ({py}); build it with bench/setup_inseq.sh", file=sys.stderr)
        return None
    tok = model.tokenizer
    prompts = [tok.decode(ids[1:]) for ids, *_ in exs]
    full = [tok.decode(torch.cat([ids[1:], torch.tensor([t])])) for ids, t, *_ in exs]
    with tempfile.TemporaryDirectory() as tmp:
        job, out = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job.write_text(json.dumps({"model_dir": model_dir, "settings": SETTINGS, "prompts": prompts, "full": full,
                                   "repeats": repeats, "out": str(out), "device": device}))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
        subprocess.run([str(py), __file__, "inseq-worker", str(job)], check=True, env=env, cwd=str(ROOT))
        return json.loads(out.read_text())


VARIANTS = [  # (name, options): ours as shipped, then with its two speed-ups taken away one by one
    ("ours (default: lean forward, planned calls)", {}),
    ("ours, Hugging Face forward (lean=False)", {"lean": False}),
    ("ours, reference step-by-step loop (batched=False, lean=False)", {"lean": False, "batched": False}),
]


def speed(args) -> None:
    from interp.attribution import attribute
    from interp.attribution.faithfulness import faithfulness
    from interp.attribution.result import TokenAttribution
    from interp.models import load_model, str_tokens

    model = load_model(args.model, device=args.device)
    exs = examples(model, args.prompts, args.width)
    rows = {}
    atts: dict[str, list] = {}
    for name, opts in VARIANTS:
        times, calls, seqs = [], [], []
        for rep in range(args.repeats):
            for k, (ids, tgt, _src, _kind) in enumerate(exs):
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    a = attribute(model, ids, tgt, method="reagent", seed=1000 * rep + k, **opts, **SETTINGS)
                times.append(time.perf_counter() - t0)
                calls.append(a.info["forward_calls"])
                seqs.append(a.info["forward_sequences"])
                if rep == 0 and not opts:
                    atts.setdefault(name, []).append(a)
        rows[name] = (times, calls, seqs)
    model_dir = args.model if Path(args.model).is_dir() else str(ROOT / "data" / "models" / args.model)
    ins = run_inseq(model_dir, model, exs, args.repeats, args.device)
    if ins is not None:
        rows["inseq reagent"] = ([r["seconds"] for r in ins], [r["calls"] for r in ins], [r["rows"] for r in ins])
        for r in ins:
            if r["rep"] != 0:
                continue
            ids, tgt = exs[r["k"]][0], exs[r["k"]][1]
            assert r["tokens"][: len(ids)] == ids.tolist(), "inseq tokenised the prompt differently"
            names = str_tokens(model, torch.cat([ids, torch.tensor([tgt])]))
            atts.setdefault("inseq reagent", []).append(TokenAttribution(
                "stories", names[:-1], names[-1:], torch.tensor([r["scores"]]), "inseq_reagent",
                target_ids=[tgt], source_ids=ids.tolist()))
    print(f"\nReAGent on {len(exs)} stories prompts x {args.repeats} repeats, settings {SETTINGS}, uniform sampler, "
          f"device {args.device}, torch threads {torch.get_num_threads()}\n")
    ref = statistics.median(rows["inseq reagent"][0]) if "inseq reagent" in rows else None
    print(f"{'method':64s} {'median s/prompt':>16s} {'inseq / this':>13s} {'median calls':>13s} {'median seqs':>12s}")
    for name, (t, c, q) in rows.items():
        ratio = f"{ref / statistics.median(t):13.2f}" if ref else f"{'':13s}"
        print(f"{name:64s} {statistics.median(t):16.3f} {ratio} {statistics.median(c):13.0f} {statistics.median(q):12.0f}")
    if ref and args.device == "cpu":
        T = statistics.median(len(e[0]) for e in exs)
        floor, gflops = gemm_floor(model, int(T))
        fewest = statistics.median(rows[VARIANTS[2][0]][2])
        print(f"\nfloor: the matrix products of one {int(T)}-token sequence take at least {floor:.3f} ms (their FLOPs at "
              f"{gflops:.0f} GFLOP/s, the best measured here); x {fewest:.0f} sequences (fewest: the reference loop's "
              f"median) = {floor * fewest / 1000:.3f} s per prompt, so at most {ref / (floor * fewest / 1000):.1f}x "
              "faster than inseq in float32 on this machine")
    print("\nfaithfulness (mean over prompts, 10 mask seeds; ln(metric / random) > 0 is better than random):")
    keys = ["soft_ns_vs_random", "soft_nc_vs_random", "hard_sufficiency", "hard_comprehensiveness"]
    print(f"{'method':44s} " + " ".join(f"{k:>23s}" for k in keys) + f" {'top1':>6s}")
    for name, lst in atts.items():
        fs = [faithfulness(model, a, n_samples=10, seed=k) for k, a in enumerate(lst)]
        top1 = sum(a.top(1)[0] == exs[k][2] for k, a in enumerate(lst)) / len(lst)
        cells = []
        for key in keys:  # ln(0) = -inf when a soft sufficiency is clamped to 0: counted, left out of the mean
            vals = [float(f[key]) for f in fs if math.isfinite(float(f[key]))]
            sem = statistics.stdev(vals) / len(vals) ** 0.5 if len(vals) > 1 else 0.0
            bad = f" ({len(fs) - len(vals)} inf)" if len(vals) < len(fs) else ""
            cells.append(f"{statistics.mean(vals) if vals else math.nan:8.3f} +- {sem:5.3f}{bad:>8s}")
        print(f"{name[:44]:44s} " + " ".join(cells) + f" {top1:6.2f}")


def gemm_floor(model, T: int, reps: int = 50) -> tuple[float, float]:
    """(milliseconds, GFLOP/s): a lower bound on the time the matrix products of one lean forward of a sequence of
    ``T`` tokens can take on this machine (GPT-2-shaped: projections, MLP, attention's two batched products, the
    last block for the last position only, the last-position unembedding), i.e. their FLOPs divided by the best
    throughput measured for matrix products of the model's widths (768-token blocks, the fastest of 10 timings)."""
    c = model.cfg
    d, f, L, V = c.d_model, c.d_mlp, c.n_layers, c.d_vocab
    flops = (L - 1) * T * 2 * (4 * d * d + 2 * d * f) + (L - 1) * 4 * T * T * d  # full blocks + attention
    flops += T * 2 * 2 * d * d + 2 * (2 * d * d + 2 * d * f) + 4 * T * d + 2 * d * V  # last block, unembedding
    best = 0.0
    for m, k, n in [(768, d, d), (768, d, 3 * d), (768, d, f), (768, f, d)]:
        a, w = torch.randn(m, k), torch.randn(k, n)
        for _ in range(10):
            t0 = time.perf_counter()
            for _ in range(reps):
                a @ w
            best = max(best, 2 * m * k * n * reps / (time.perf_counter() - t0))
    return flops / best * 1000, best / 1e9


def groundtruth(args) -> None:
    from interp.attribution import attribute
    from interp.models import load_model

    model = load_model(args.model, device="cpu")
    exs = examples(model, args.prompts, args.width)
    print(f"{len(exs)} prompts (cropped to 24 tokens, model predicts the decided word); kinds:",
          {k: sum(e[3] == k for e in exs) for k in {e[3] for e in exs}})
    configs = [("random", {}), ("integrated_gradients", {}), ("input_x_gradient", {}), ("gradient_norm", {}),
               ("attention_last_layer", {}), ("occlusion", {}), ("reagent", {"sampler": "model"}), ("reagent", {})]
    if args.methods:
        configs = [c for c in configs if (c[0] + (":" + c[1]["sampler"] if c[1] else "")) in args.methods.split(",")]
    print(f"{'method':40s} {'top1':>6s} {'last-token top1':>16s} {'s/prompt':>9s}")
    for method, opts in configs:
        hits = last = 0
        t0 = time.perf_counter()
        for k, (ids, tgt, src, _kind) in enumerate(exs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = attribute(model, ids, tgt, method=method, **({"seed": k} if method in ("random", "reagent") else {}), **opts)
            top = a.top(1)[0]
            hits += top == src
            last += top == len(ids) - 1
        dt = (time.perf_counter() - t0) / len(exs)
        name = method + (f" {opts}" if opts else "")
        print(f"{name:40s} {hits / len(exs):6.2f} {last / len(exs):16.2f} {dt:9.2f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["speed", "groundtruth", "inseq-worker"])
    p.add_argument("job", nargs="?")
    p.add_argument("--model", default="stories")
    p.add_argument("--prompts", type=int, default=None)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--width", type=int, default=24, help="prompt length in tokens (BOS + the last width-1 tokens)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (both tools run there; cuda not yet run: no GPU was lent)")
    p.add_argument("--methods", default=None, help="groundtruth: comma list, e.g. reagent,reagent:model,occlusion")
    args = p.parse_args()
    if args.mode == "inseq-worker":
        return inseq_worker(args.job)
    torch.set_num_threads(1)
    if args.mode == "speed":
        args.prompts = args.prompts or 10
        speed(args)
    else:
        args.prompts = args.prompts or 100
        groundtruth(args)


if __name__ == "__main__":
    main()
