"""Attribution on a real LM (SmolLM2-135M): forward paths, ReAGent's stop rule and stability, ground truth, faithfulness.

    python bench/attribution_real.py all [--threads 1] [--prompts 20]     # everything below, one command
    python bench/attribution_real.py forward      # ms per 20-token row: bridge full / logits_to_keep=1 / lean
    python bench/attribution_real.py stability    # ReAGent settings: stop steps, sequences, seconds, seed-to-seed Spearman
    python bench/attribution_real.py truth        # top-1 / top-3 rates of every method on induction and fact prompts
    python bench/attribution_real.py faithful     # soft / hard sufficiency and comprehensiveness on prose (+ inseq)
        [--methods none --inseq-settings reference --prompts 6]   # inseq alone, at its own defaults
        [--methods "reagent:num_probes=4;min_steps=8" --no-inseq --save f.json]   # REAGENT_REAL overridden

ReAGent rows run ``reagent_scores`` directly (``LastLogits``: the bridge with ``logits_to_keep=1``; uniform sampler;
BOS fixed) so every setting of the algorithm, and the sequences it runs, can be compared. inseq runs
from bench/.venv-inseq (bench/setup_inseq.sh) through bench/attribution.py's worker, same prompts and settings.
Timings on the shared 2-core machine are inflated by other processes; medians are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REFERENCE = dict(replace_ratio=0.3, keep_top_n=5, stop_top_k=3, num_probes=16, max_steps=3000, min_steps=0)
PAPER = dict(replace_ratio=0.1, keep_top_n=8, stop_top_k=3, num_probes=5, max_steps=5000, min_steps=0)


def load():
    from interp import load_model

    return load_model("smollm2-135m", device="cpu")


def our_reagent(model, tokens: torch.Tensor, target: int, seed: int = 0, **settings):
    """(ReagentRun, seconds) of our ReAGent on ``tokens`` [T] (BOS fixed, uniform sampler)."""
    from interp.attribution.forward import LastLogits
    from interp.attribution.reagent import reagent_scores
    from interp.attribution.samplers import UniformSampler

    fixed = torch.zeros(tokens.shape[0], dtype=torch.bool)
    fixed[0] = int(tokens[0]) == model.tokenizer.bos_token_id
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = reagent_scores(LastLogits(model), tokens, target, UniformSampler.for_model(model), seed=seed,
                             fixed=fixed, **settings)
    return run, time.perf_counter() - t0


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two score vectors (ties broken by position)."""
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()).clamp_min(1e-12))


def prose_prompts(model, n: int, width: int = 20):
    """[(ids [width], greedy target)]: BOS + the first width-1 tokens of ``n`` prose paragraphs."""
    from interp.corpora import prose

    out = []
    for text in prose("heldout") + prose("train"):
        ids = model.to_tokens(text)[0][:width]
        if ids.shape[0] < width:
            continue
        with torch.no_grad():
            out.append((ids.cpu(), int(model(ids[None], logits_to_keep=1)[0, -1].argmax())))
        if len(out) == n:
            break
    return out


def forward(model, args) -> None:
    from interp.attribution.lean import lean_forward

    lean = lean_forward(model)
    g = torch.Generator().manual_seed(0)
    print(f"ms per 20-token row, median of 5, threads {torch.get_num_threads()}")
    paths = [("bridge full logits", lambda x: model(x)), ("bridge logits_to_keep=1", lambda x: model(x, logits_to_keep=1)),
             ("lean", lean)]
    with torch.no_grad():
        for n in (8, 32, 128):
            x = torch.randint(0, model.cfg.d_vocab, (n, 20), generator=g)
            cells = []
            for name, fn in paths:
                fn(x)
                ts = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    fn(x)
                    ts.append(time.perf_counter() - t0)
                cells.append(f"{name} {statistics.median(ts) * 1000 / n:6.1f}")
            print(f"batch {n:4d}: " + " | ".join(cells), flush=True)


def stability(model, args) -> None:
    from interp.attribution.reagent import REAGENT_REAL
    from interp.attribution.truth import induction_prompts

    prompts = [(p.tokens, p.target_id) for p in induction_prompts(model, args.prompts // 2)]
    prompts += prose_prompts(model, args.prompts - len(prompts))
    cap = args.cap
    configs = [("REAGENT_REAL", REAGENT_REAL), ("REAGENT_REAL min_steps 0", {**REAGENT_REAL, "min_steps": 0}),
               ("paper r.1 n8 B5", {**PAPER, "max_steps": cap}), ("reference r.3 n5 B16", {**REFERENCE, "max_steps": cap})]
    if args.settings:  # names of the rows above, or reagent:key=value;... (REAGENT_REAL overridden)
        named = dict(configs)
        configs = [(c, named[c] if c in named else reagent_settings(parse_method(c)[1])) for c in args.settings.split(",")]
    print(f"{len(prompts)} prompts ({args.prompts // 2} induction, rest prose, 20 tokens), 2 seeds; max_steps capped at "
          f"{cap} for the reference and paper rows")
    print(f"{'settings':28s} {'converged':>9s} {'med stop':>8s} {'med seqs':>8s} {'med s':>6s} {'max score':>9s} "
          f"{'spearman':>14s}")
    for name, cfg in configs:
        conv, stops, seqs, secs, mx, rho = [], [], [], [], [], []
        for k, (ids, tgt) in enumerate(prompts):
            r0, t0 = our_reagent(model, ids, tgt, seed=k, **cfg)
            r1, _ = our_reagent(model, ids, tgt, seed=k + 5000, **cfg)
            conv.append(float(r0.stopped_at.gt(0).float().mean()))
            stops += [int(s) for s in r0.stopped_at if s > 0]
            seqs.append(r0.forward_sequences)
            secs.append(t0)
            mx.append(float(r0.scores.max()))
            rho.append(spearman(r0.scores, r1.scores))
        sem = statistics.stdev(rho) / len(rho) ** 0.5
        print(f"{name:28s} {statistics.mean(conv):9.2f} {statistics.median(stops) if stops else math.nan:8.0f} "
              f"{statistics.median(seqs):8.0f} {statistics.median(secs):6.1f} {statistics.median(mx):9.2f} "
              f"{statistics.mean(rho):6.2f} +- {sem:4.2f}", flush=True)


METHODS = ["random", "gradient_norm", "input_x_gradient", "attention_last_layer", "occlusion", "integrated_gradients",
           "reagent"]


def parse_method(spec: str) -> tuple[str, dict[str, str]]:
    """``"name:key=value;key=value"`` -> (name, {key: value}) (values stay strings)."""
    name, _, opts = spec.partition(":")
    return name, dict(kv.split("=", 1) for kv in opts.split(";") if kv)


def reagent_settings(options: dict[str, str]) -> dict:
    """REAGENT_REAL with ``options`` (strings, e.g. from ``reagent:num_probes=2;masks=bernoulli``) overriding it."""
    from interp.attribution.reagent import REAGENT_REAL

    unknown = set(options) - set(REAGENT_REAL)
    if unknown:
        raise SystemExit(f"reagent options {sorted(unknown)} unknown; choose from {sorted(REAGENT_REAL)}")
    return {**REAGENT_REAL, **{k: type(REAGENT_REAL[k])(v) for k, v in options.items()}}


def _attribute(model, method, ids, tgt, seed):
    """(scores [T], seconds, model sequences or None) for ``method`` (ReAGent with REAGENT_REAL);
    ``"name:key=value;..."`` passes options (``integrated_gradients:objective=prob``, ``reagent:num_probes=2``)."""
    from interp.attribution import attribute

    method, options = parse_method(method)
    t0 = time.perf_counter()
    if method == "reagent":  # options override REAGENT_REAL (reagent:num_probes=2;max_steps=30)
        run, dt = our_reagent(model, ids, tgt, seed=seed, **reagent_settings(options))
        return run.scores.float(), dt, run.forward_sequences
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = attribute(model, ids, tgt, method=method, **({"seed": seed} if method == "random" else {}), **options)
    return a.row().float(), time.perf_counter() - t0, None


def truth(model, args) -> None:
    from interp.attribution.truth import fact_prompts, induction_prompts

    sets = {"induction": induction_prompts(model, args.truth_prompts), "fact": fact_prompts(model)[: args.truth_prompts]}
    methods = args.methods.split(",") if args.methods else METHODS
    print(f"{'method':34s} " + " ".join(f"{k + ' top1':>15s} {k + ' top3':>15s}" for k in sets) + f" {'s/prompt':>9s}")
    for method in methods:
        cells, secs = [], []
        for prompts in sets.values():
            h1 = h3 = 0
            for k, p in enumerate(prompts):
                scores, dt, _ = _attribute(model, method, p.tokens, p.target_id, k)
                secs.append(dt)
                top = scores.topk(min(3, scores.numel())).indices.tolist()
                h1 += top[0] in p.sources
                h3 += bool(set(top) & set(p.sources))
            cells += [f"{h1 / len(prompts):15.2f}", f"{h3 / len(prompts):15.2f}"]
        print(f"{method:34s} " + " ".join(cells) + f" {statistics.median(secs):9.2f}", flush=True)
    print("prompts:", {k: len(v) for k, v in sets.items()})


def _with_bos(scores: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """[len(ids)] scores: ``scores`` of ids[1:] with the row minimum prepended for BOS (unchanged if already full)."""
    return scores if scores.shape[0] == ids.shape[0] else torch.cat([scores.min()[None], scores])


def faithful(model, args) -> None:
    from interp.attribution.faithfulness import faithfulness
    from interp.attribution.result import TokenAttribution
    from interp.models import str_tokens

    prompts = prose_prompts(model, args.prompts)
    methods = [] if args.methods == "none" else args.methods.split(",") if args.methods else METHODS
    keys = ["soft_ns_vs_random", "soft_nc_vs_random", "hard_sufficiency_vs_random", "hard_comprehensiveness_vs_random"]
    rows = {}
    for method in methods:
        atts = []
        for k, (ids, tgt) in enumerate(prompts):
            scores, dt, seqs = _attribute(model, method, ids, tgt, k)
            atts.append((scores, dt, seqs))
        rows[method] = atts
    if args.inseq:
        import bench.attribution as ba
        from bench.attribution import run_inseq
        from interp.attribution.reagent import REAGENT_REAL

        chosen = REAGENT_REAL if args.inseq_settings == "real" else REFERENCE
        ba.SETTINGS = {k: chosen[k] for k in ("replace_ratio", "keep_top_n", "stop_top_k", "num_probes", "max_steps")}
        from interp.models.gguf import hf_folder
        from interp.models.real import real_model_file

        ins = run_inseq(str(hf_folder(real_model_file("smollm2-135m"))), model, prompts, 1)
        if ins is not None:
            # inseq reports no score for BOS (its sources start after it): BOS gets the row's minimum (least important)
            rows[f"inseq reagent ({args.inseq_settings})"] = [(_with_bos(torch.tensor(r["scores"]), ids), r["seconds"], r["rows"])
                                     for r, (ids, _) in zip(ins, prompts)]
    print(f"{len(prompts)} prose prompts (BOS + 19 tokens), greedy target, 10 mask seeds; mean +- s.e. of ln(metric/random)")
    print(f"{'method':22s} " + " ".join(f"{k:>26s}" for k in keys) + f" {'med s':>7s}")
    saved = {}
    for method, atts in rows.items():
        fs = []
        for (scores, _, _), (ids, tgt) in zip(atts, prompts):
            names = str_tokens(model, torch.cat([ids, torch.tensor([tgt])]))
            a = TokenAttribution("smollm2-135m", names[:-1], names[-1:], scores[None, : ids.shape[0]], method,
                                 target_ids=[tgt], source_ids=ids.tolist())
            fs.append(faithfulness(model, a, n_samples=10, seed=0))
        saved[method] = [{"seconds": dt, "sequences": n, "scores": s.tolist(), **{k: float(f[k]) for k in keys}}
                         for (s, dt, n), f in zip(atts, fs)]
        cells = []
        for key in keys:
            vals = [float(f[key]) for f in fs if math.isfinite(float(f[key]))]
            sem = statistics.stdev(vals) / len(vals) ** 0.5 if len(vals) > 1 else 0.0
            cells.append(f"{statistics.mean(vals) if vals else math.nan:8.3f} +- {sem:5.3f} ({len(fs) - len(vals)} inf)")
        print(f"{method:22s} " + " ".join(f"{c:>26s}" for c in cells) + f" {statistics.median(d for _, d, _ in atts):7.2f}",
              flush=True)
    if args.save:  # per prompt: seconds, model sequences (ReAGent), scores and the four ratios (to compare runs on the same prompts)
        Path(args.save).write_text(json.dumps(saved))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["all", "forward", "stability", "truth", "faithful"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prompts", type=int, default=20, help="stability / faithful prompts")
    p.add_argument("--truth-prompts", type=int, default=60)
    p.add_argument("--cap", type=int, default=200, help="max_steps for the reference / paper stability rows")
    p.add_argument("--methods", default=None, help="comma-separated; options after a colon: name:key=value;key=value")
    p.add_argument("--no-inseq", dest="inseq", action="store_false")
    p.add_argument("--inseq-settings", choices=["real", "reference"], default="real",
                   help="faithful: inseq's reagent with REAGENT_REAL (less min_steps) or the reference (inseq) defaults")
    p.add_argument("--save", default=None, help="faithful: write per-prompt results to this JSON file")
    p.add_argument("--settings", default=None, help="stability: only these rows (comma-separated names, e.g. REAGENT_REAL)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = load()
    for mode in (["forward", "stability", "truth", "faithful"] if args.mode == "all" else [args.mode]):
        print(f"\n## {mode} (threads {args.threads})\n", flush=True)
        globals()[mode](model, args)


if __name__ == "__main__":
    main()
