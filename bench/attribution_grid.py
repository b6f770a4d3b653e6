"""Ground truth per attribution method x per-token reduction on real models (issue 35, item 4).

    python bench/attribution_grid.py probe --model smollm2-135m            # seconds per method on 3 prompts
    python bench/attribution_grid.py run --model smollm2-135m [--n 50] [--reagent-n 20] [--threads 1]
    python bench/attribution_grid.py table                                 # bench/results/attribution_grid.md

For each model: ``--n`` induction prompts (``truth.induction_prompts``, seed 0) and the first ``--n`` fact prompts the
model answers correctly (``truth.fact_prompts``: the expected answer's first token is the model's greedy top-1, so
every prompt is one the model gets right). Every registered method runs once per prompt through ``attribute`` at its
defaults; the methods that score each embedding dimension (integrated_gradients, input_x_gradient, gradient_norm) run
once and every per-token reduction is applied to the same per-dimension attributions (captured where the method
reduces them, ``interp.attribution.reduction.reduce_tokens``), so a reduction costs nothing and the cost is per method.
The first prompt of each kind is checked against ``attribute(..., reduction=r)`` called directly (max |difference|
printed and stored). ReAGent runs on the first ``--reagent-n`` prompts of each kind only (it costs ~15 s a prompt).

A hit: a deciding position among the method's 3 highest scores (``TokenAttribution.top``). Standard error
sqrt(r (1 - r) / n). Random floor: the analytic chance that 3 positions drawn without replacement from the ``p``
scored positions (BOS included) hit one of the ``s`` sources, 1 - C(p - s, 3) / C(p, 3), averaged over the prompts.
Sequences: model sequences (rows) through the embedding per prompt, counted by a forward hook; the gradient methods
also back-propagate each of them. Seconds: median wall time per prompt on the shared, busy 2-core machine.

``run`` writes bench/results/attribution_grid_<model>.json (raw per-prompt scores); ``table`` reads every such file
and writes bench/results/attribution_grid.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

REDUCED = ("integrated_gradients", "input_x_gradient", "gradient_norm")  # score each embedding dimension
WHOLE = ("attention_ig", "occlusion", "occlusion_pad", "attention_last_layer", "random", "reagent")  # score whole tokens
REDUCTIONS = ("sum", "l2", "abs_sum")
VARIANTS = {"occlusion_pad": ("occlusion", {"replacement": "pad"})}  # grid row -> (method, settings): non-defaults
ORDER = ("integrated_gradients", "attention_ig", "input_x_gradient", "gradient_norm", "occlusion", "occlusion_pad",
         "attention_last_layer", "reagent", "random")


@contextlib.contextmanager
def captured_dims(store: list):
    """Record the per-dimension tensor [..., d] every call of ``reduce_tokens`` inside the attribution methods reduces
    (IG's and the gradient methods'), leaving what they compute unchanged."""
    import interp.attribution.ig as ig_mod
    import interp.attribution.methods as m_mod

    orig = m_mod.reduce_tokens

    def capture(x: torch.Tensor, reduction: str) -> torch.Tensor:
        store.append(x.detach().float().cpu().clone())
        return orig(x, reduction)

    ig_mod.reduce_tokens = m_mod.reduce_tokens = capture
    try:
        yield
    finally:
        ig_mod.reduce_tokens = m_mod.reduce_tokens = orig


@contextlib.contextmanager
def counted_sequences(model, box: list):
    """Count the rows of every forward pass through the token embedding (``box[0]``)."""
    from interp.attribution.ig import embed_hook_name

    point = model.hook_dict[embed_hook_name(model)]
    handle = point.register_forward_hook(lambda mod, inp, out: box.__setitem__(0, box[0] + int(out.shape[0])))
    try:
        yield
    finally:
        handle.remove()


def run_method(model, method: str, prompt, k: int) -> dict:
    """One method on one ``TruthPrompt``: {"seconds", "sequences", "scores": {reduction or "-": [p floats]}, "info"}."""
    from interp.attribution import attribute
    from interp.attribution.reduction import reduce_tokens

    method, options = VARIANTS.get(method, (method, {}))
    options = {**options, "seed": k} if method in ("random", "reagent") else dict(options)
    if method in ("integrated_gradients", "input_x_gradient"):
        options["reduction"] = "l2"  # the flattened path (IG integrates every dimension); each reduction applied below
    dims: list = []
    box = [0]
    with warnings.catch_warnings(), captured_dims(dims), counted_sequences(model, box):
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        a = attribute(model, prompt.tokens, prompt.target_id, method=method, **options)
        dt = time.perf_counter() - t0
    p = a.target_positions[0]
    if method in REDUCED:
        x = dims[-1].reshape(-1, dims[-1].shape[-1])[-p:]  # [p, d]: the one target row's sources
        scores = {r: reduce_tokens(x, r).tolist() for r in REDUCTIONS}
        scores_check = a.row().tolist()
        assert max(abs(u - v) for u, v in zip(scores[a.reduction], scores_check)) < 1e-5, method
    else:
        scores = {"-": a.row().tolist()}
    info = {}
    if a.completeness_error is not None:
        info["completeness_error"] = float(a.completeness_error.max())
    if "n_steps" in a.info:
        info["points"] = a.info["n_steps"]
    if method == "reagent":
        info["forward_sequences"] = a.info.get("forward_sequences")
    return {"seconds": dt, "sequences": box[0], "scores": scores, "info": info}


def direct_check(model, prompt) -> dict:
    """Max |score difference| between the captured reductions and ``attribute(..., reduction=r)`` called directly on
    one prompt (IG: "sum", whose adaptive rule integrates the signed sums rather than every dimension, and "abs_sum")."""
    from interp.attribution import attribute

    out = {}
    for method in REDUCED:
        base = run_method(model, method, prompt, 0)["scores"]
        for r in ("sum", "abs_sum") if method == "integrated_gradients" else REDUCTIONS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                a = attribute(model, prompt.tokens, prompt.target_id, method=method, reduction=r)
            d = (torch.tensor(base[r]) - a.row()).abs().max()
            same = torch.tensor(base[r]).topk(3).indices.tolist() == a.top(3)
            out[f"{method}/{r}"] = {"max_abs_diff": float(d), "same_top3": same}
    return out


def prompts_for(model, n: int, source: str = "") -> dict:
    """{"induction": [TruthPrompt], "fact": [TruthPrompt], "facts_correct": int}; ``source``: a grid JSON whose prompts
    are rebuilt (text, target and sources as stored) instead of generated again."""
    from interp.attribution.truth import TruthPrompt, fact_prompts, induction_prompts

    if source:
        data = json.loads(Path(source).read_text())
        out: dict = {"induction": [], "fact": [], "facts_correct": data["facts_correct"]}
        for r in data["prompts"]:
            tokens = model.to_tokens(r["text"])[0].cpu()
            assert tokens.shape[0] == r["n_tokens"], r["text"]
            out[r["kind"]].append(TruthPrompt(tokens, r["target_id"], tuple(r["sources"]), r["kind"], r["text"]))
        return out
    facts = fact_prompts(model)
    return {"induction": induction_prompts(model, n, seed=0), "fact": facts[:n], "facts_correct": len(facts)}


def run(args) -> None:
    from interp import load_model
    from interp.attribution.truth import FACTS

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = load_model(args.model, device="cpu")
    print(f"loaded {args.model} in {time.perf_counter() - t0:.0f} s", flush=True)
    sets = prompts_for(model, args.n, args.prompts_from)
    n_facts = sets.pop("facts_correct")
    print(f"prompts: induction {len(sets['induction'])}, fact {len(sets['fact'])} ({n_facts} of {len(FACTS)} facts "
          "answered correctly)", flush=True)
    if args.probe:
        sets = {k: v[:args.probe] for k, v in sets.items()}
    methods = args.methods.split(",") if args.methods else list(ORDER)
    limits = {m: int(v) for m, v in (kv.split("=") for kv in args.limit.split(",") if kv)}
    out = {"model": args.model, "threads": args.threads, "n": args.n, "limits": limits, "facts_correct": n_facts,
           "facts_total": len(FACTS), "probe": args.probe, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "load_average": [round(x, 1) for x in os.getloadavg()], "prompts": []}
    path = Path(args.out or RESULTS / f"attribution_grid_{args.model}{'_probe' if args.probe else ''}.json")
    n = max(len(v) for v in sets.values())
    rows = {(kind, k): {"kind": kind, "index": k, "text": pr.text, "target_id": pr.target_id, "sources": list(pr.sources),
                        "n_tokens": int(pr.tokens.shape[0]), "methods": {}}
            for kind, prompts in sets.items() for k, pr in enumerate(prompts)}
    out["prompts"] = list(rows.values())
    # the cheap methods on every prompt first, then the costly ones on their first prompts (``--limit``), kinds
    # interleaved and the file written after every prompt pair: a run cut short keeps every cell it measured
    for method in sorted(methods, key=lambda m: (m in limits, ORDER.index(m))):
        for k in tqdm(range(args.start, min(n, limits.get(method, n))), desc=f"{args.model} {method}", mininterval=30):
            for kind, prompts in sets.items():
                if k < len(prompts):
                    rows[(kind, k)]["methods"][method] = run_method(model, method, prompts[k], k)
            path.write_text(json.dumps(out))
        print(f"{method} done, {time.perf_counter() - t0:.0f} s", flush=True)
    out["load_average_end"] = [round(x, 1) for x in os.getloadavg()]
    if not args.probe and not args.start:
        out["direct_check"] = direct_check(model, sets["induction"][0])
    path.write_text(json.dumps(out))
    print(f"wrote {path} ({time.perf_counter() - t0:.0f} s)")
    summary(out)


def hit3(scores: list[float], sources: list[int]) -> bool:
    """Whether a source is among the 3 highest ``scores`` (ties as ``torch.topk``, as ``TokenAttribution.top``)."""
    top = torch.tensor(scores).topk(min(3, len(scores))).indices.tolist()
    return bool(set(top) & set(sources))


def random_floor(p: int, s: int, k: int = 3) -> float:
    """Chance that ``k`` of ``p`` positions drawn without replacement include one of ``s`` sources."""
    return 1 - math.comb(p - s, k) / math.comb(p, k) if p - s >= k else 1.0


def grid(data: dict) -> list[dict]:
    """One dict per (method, reduction): rates with SE per kind, prompts, median seconds and sequences."""
    out = []
    for method in ORDER:
        cells = {}
        for row in data["prompts"]:
            res = row["methods"].get(method)
            if res is None:
                continue
            for red, sc in res["scores"].items():
                c = cells.setdefault(red, {"hits": {}, "seconds": [], "sequences": [], "cerr": []})
                c["hits"].setdefault(row["kind"], []).append(hit3(sc, row["sources"]))
                c["seconds"].append(res["seconds"])
                c["sequences"].append(res["sequences"])
                if "completeness_error" in res["info"]:
                    c["cerr"].append(res["info"]["completeness_error"])
        for red, c in cells.items():
            entry = {"method": method, "reduction": red, "seconds": statistics.median(c["seconds"]),
                     "sequences": statistics.median(c["sequences"])}
            for kind, h in c["hits"].items():
                r = sum(h) / len(h)
                entry[kind] = {"rate": r, "se": math.sqrt(r * (1 - r) / len(h)), "n": len(h)}
            if c["cerr"]:
                entry["completeness_median"] = statistics.median(c["cerr"])
            out.append(entry)
    return out


def floors(data: dict) -> dict:
    """{kind: mean analytic top-3 chance of a random ranking} (the prompt's n_tokens positions are scored)."""
    f: dict = {}
    for row in data["prompts"]:
        f.setdefault(row["kind"], []).append(random_floor(row["n_tokens"], len(row["sources"])))
    return {k: sum(v) / len(v) for k, v in f.items()}


def _cell(e: dict, kind: str) -> str:
    c = e.get(kind)
    return f"{c['rate']:.2f} ± {c['se']:.2f} ({c['n']})" if c else "-"


def summary(data: dict) -> None:
    print(f"{'method':22s} {'red':7s} {'induction':>18s} {'fact':>18s} {'s/prompt':>9s} {'seqs':>7s}")
    for e in grid(data):
        print(f"{e['method']:22s} {e['reduction']:7s} {_cell(e, 'induction'):>18s} {_cell(e, 'fact'):>18s} "
              f"{e['seconds']:9.2f} {e['sequences']:7.0f}")
    print("random floor (analytic):", {k: round(v, 3) for k, v in floors(data).items()})


HEADER = """# Attribution ground truth per method x per-token reduction (issue 35, item 4)

Generated by `python bench/attribution_grid.py table` from `attribution_grid_<model>.json` (raw per-prompt scores,
seconds and sequences), written by `python bench/attribution_grid.py run --model <model> --threads 1` (`nice -n 10`).

- Prompts: induction (10 random single-token words, the first 5-8 repeated; the deciding position is the next word's
  first occurrence; `truth.induction_prompts(model, 50, seed=0)`) and facts (the first 50 of `truth.FACTS` whose
  expected answer's first token is the model's greedy top-1, so every prompt is one the model gets right; the deciding
  positions are the subject's tokens). BOS, when the tokenizer adds one, is scored like any position (occlusion by
  deletion, the default since 2026-12-07, and IG keep it: it scores 0 there).
- `occlusion` deletes each token in turn (its default); `occlusion_pad` is the same method with `replacement="pad"`
  (the default before: the pad token in the token's place), the row the table called `occlusion` until then.
- Every method runs through `attribute(...)` at its own defaults. The three that score every embedding dimension (IG,
  input x gradient, gradient norm) run once per prompt; each reduction is applied to the same per-dimension
  attributions (the reductions cost nothing; seconds and sequences are per method).
- Top-3 hit: a deciding position among the method's 3 highest scores; ± one standard error sqrt(r (1 - r) / n);
  (n) prompts. Random floor: the analytic chance that 3 of the p scored positions drawn at random include one of the
  s deciding ones, 1 - C(p - s, 3) / C(p, 3), averaged over the prompts (the `random` row is one seeded draw).
- Seconds: median wall time per prompt, **on the shared 2-core machine while ~6 other jobs ran (load average 5-13,
  this job at nice 10 and one torch thread, the two models' runs side by side): times are several times an idle
  machine's**; compare them with each other, not with other tables. Sequences: median model sequences (rows) through
  the embedding per prompt, counted by a forward hook; gradient methods back-propagate each of them as well.
"""


def combined(datas: list[dict]) -> list[str]:
    """The README table: one row per method x reduction, top-3 ± SE and seconds for each model side by side."""
    grids = [{(e["method"], e["reduction"]): e for e in grid(d)} for d in datas]
    keys = [k for k in grids[0] if all(k in g for g in grids)]
    head = "| method | reduction | " + " | ".join(
        f"{d['model']} induction | {d['model']} fact | {d['model']} s" for d in datas) + " |"
    lines = [head, "|---|---|" + "---|---|---|" * len(datas)]
    floor = "| random floor (analytic) | | " + " | ".join(
        f"{floors(d)['induction']:.2f} | {floors(d)['fact']:.2f} | " for d in datas) + " |"
    for m, r in keys:
        cells = []
        for g in grids:
            e = g[(m, r)]
            cells.append(f"{_cell(e, 'induction')} | {_cell(e, 'fact')} | {e['seconds']:.1f}")
        lines.append(f"| {m} | {r} | " + " | ".join(cells) + " |")
    return [*lines, floor]


def table(args) -> None:  # noqa: ARG001
    files = sorted((f for f in RESULTS.glob("attribution_grid_*.json") if not f.stem.endswith("_probe")),
                   key=lambda f: ("smollm2" not in f.name, f.name))  # SmolLM2 first
    datas = [json.loads(f.read_text()) for f in files]
    lines = [HEADER, "## Both models", "", *combined(datas), ""]
    for f, data in zip(files, datas):
        fl = floors(data)
        subsets = "; ".join(f"{m} ran on the first {v} prompts of each kind only" for m, v in data["limits"].items())
        lines += [f"## {data['model']} (started {data['date']}, load average {data['load_average']} at the start; `{f.name}`)",
                  "",
                  f"Prompts: {sum(r['kind'] == 'induction' for r in data['prompts'])} induction, "
                  f"{sum(r['kind'] == 'fact' for r in data['prompts'])} fact (the model answers {data['facts_correct']} "
                  f"of the {data['facts_total']} facts; the first {data['n']} of those). {subsets} (fewer where the run "
                  f"was stopped: the (n) column says). Random floor (analytic): induction {fl['induction']:.2f}, "
                  f"fact {fl['fact']:.2f}.", "",
                  "| method | reduction | induction top-3 ± SE (n) | fact top-3 ± SE (n) | s / prompt (median) | "
                  "sequences / prompt (median) | IG completeness error (median) |",
                  "|---|---|---|---|---|---|---|"]
        for e in grid(data):
            ce = f"{e['completeness_median']:.4f}" if "completeness_median" in e else ""
            lines.append(f"| {e['method']} | {e['reduction']} | {_cell(e, 'induction')} | {_cell(e, 'fact')} | "
                         f"{e['seconds']:.2f} | {e['sequences']:.0f} | {ce} |")
        checks = data.get("direct_check")
        if checks:
            worst = max(v["max_abs_diff"] for v in checks.values())
            same = all(v["same_top3"] for v in checks.values())
            lines += ["", f"Check (first induction prompt): the reductions applied here against `attribute(..., "
                          f"reduction=r)` called directly: max |difference| {worst:.2e}, same top 3: {same}."]
        lines.append("")
    out = Path(args.out or RESULTS / "attribution_grid.md")
    old = out.read_text() if out.exists() else ""
    keep = old[old.index(READING):] if READING in old else ""  # the hand-written reading below the tables stays
    out.write_text("\n".join(lines) + ("\n" + keep if keep else ""))
    print(out.read_text())


def merge(args) -> None:
    """Add the method results of ``--merge`` (a run on the same prompts, e.g. one method run beside the main run) to
    bench/results/attribution_grid_<model>.json, keeping the main run's results where both have one."""
    path = RESULTS / f"attribution_grid_{args.model}.json"
    main, extra = json.loads(path.read_text()), json.loads(Path(args.merge).read_text())
    rows = {(r["kind"], r["index"]): r for r in main["prompts"]}
    for r in extra["prompts"]:
        assert rows[(r["kind"], r["index"])]["text"] == r["text"]
        for m, res in r["methods"].items():
            rows[(r["kind"], r["index"])]["methods"].setdefault(m, res)
    main["limits"].update(extra["limits"])
    main["merged"] = [*main.get("merged", []), {"from": Path(args.merge).name, "date": extra["date"],
                                                 "load_average": extra["load_average"]}]
    path.write_text(json.dumps(main))
    print(f"merged {args.merge} into {path}")


READING = "## Reading, and the default chosen"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "probe", "table", "merge"])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--limit", default="integrated_gradients=20,attention_ig=20,reagent=10",
                    help="method=N: run that method on the first N prompts of each kind only (the costly ones)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--methods", default="")
    ap.add_argument("--out", default="")
    ap.add_argument("--prompts-from", default="", help="run: rebuild the prompts of this grid JSON instead of generating")
    ap.add_argument("--merge", default="", help="merge: a grid JSON whose method results are added to --model's")
    ap.add_argument("--start", type=int, default=0, help="run: skip the first N prompts of each kind (to extend a "
                    "method's rows past an earlier --limit, then merge)")
    args = ap.parse_args()
    args.probe = 3 if args.command == "probe" else 0
    {"run": run, "probe": run, "table": table, "merge": merge}[args.command](args)


if __name__ == "__main__":
    main()
