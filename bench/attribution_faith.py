"""Faithfulness of every row of the attribution grid on real models (issue 35, item 4: "faithfulness where measured").

    python bench/attribution_faith.py run --model smollm2-135m [--n-samples 5] [--threads 1] [--keep-first]
    python bench/attribution_faith.py table                    # bench/results/attribution_faith.md

Reads the scores ``bench/attribution_grid.py`` stored per prompt, method and per-token reduction
(``bench/results/attribution_grid_<model>.json``; the prompts are rebuilt from it) and measures each with
``interp.attribution.faithfulness`` (the ReAGent paper's metrics; its docstring defines them): hard comprehensiveness
(how far the next-token distribution moves when the top 10/20/30/50% of the tokens' embeddings are zeroed; higher is
better) and hard sufficiency (1 - how far it moves when only those are kept; higher is better), soft normalised
comprehensiveness and sufficiency (embedding elements kept at random with the min-max scaled score; ``--n-samples``
draws), each beside the same metric for random importances drawn in the same call. The scores are judged as ranks and
relative gaps (min-max), so a method's sign convention matters: a signed method whose most negative tokens matter most
is judged as ranking them last. ``--keep-first``: the BOS position is never masked and takes no part in the ranking or
the random draws (``faithfulness(keep_first=True)``), so ranking the attention sink first earns nothing; written to
``attribution_faith_<model>_keep_first.json``. Writes ``bench/results/attribution_faith_<model>[_keep_first].json``
after every prompt (a run cut short keeps what it measured) and the table from every such file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attribution_grid import ORDER, RESULTS, prompts_for  # noqa: E402

READING = "## Reading"
METRICS = ("hard_comprehensiveness", "hard_sufficiency", "soft_nc", "soft_ns")


def run(args) -> None:
    from interp import load_model
    from interp.attribution.faithfulness import faithfulness
    from interp.attribution.result import TokenAttribution

    torch.set_num_threads(args.threads)
    grid_path = RESULTS / f"attribution_grid_{args.model}.json"
    grid = json.loads(grid_path.read_text())
    model = load_model(args.model, device="cpu")
    sets = prompts_for(model, grid["n"], str(grid_path))
    prompts = {(kind, k): pr for kind in ("induction", "fact") for k, pr in enumerate(sets[kind])}
    out = {"model": args.model, "n_samples": args.n_samples, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "keep_first": args.keep_first, "prompts": []}
    tail = "_keep_first" if args.keep_first else ""
    path = Path(args.out) if args.out else RESULTS / f"attribution_faith_{args.model}{tail}.json"
    t0 = time.perf_counter()
    rows = [r for r in grid["prompts"] if r["index"] < args.first]
    for row in tqdm(rows, desc=f"{args.model} faithfulness", mininterval=30):
        pr = prompts[(row["kind"], row["index"])]
        p = int(pr.tokens.shape[0])
        entry = {"kind": row["kind"], "index": row["index"], "methods": {}}
        for method, res in row["methods"].items():
            for reduction, scores in res["scores"].items():
                att = TokenAttribution(model=args.model, source_tokens=[str(i) for i in pr.tokens.tolist()],
                                       target_tokens=[str(pr.target_id)], scores=torch.tensor([scores]), method=method,
                                       target_positions=[p], target_ids=[pr.target_id], source_ids=pr.tokens.tolist())
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f = faithfulness(model, att, n_samples=args.n_samples, keep_first=args.keep_first).to_dict()
                keep = {m: f[m] for m in METRICS} | {m + "_random": f[m + "_random"] for m in METRICS}
                entry["methods"].setdefault(method, {})[reduction] = keep
        out["prompts"].append(entry)
        path.write_text(json.dumps(out))
    out["seconds"] = time.perf_counter() - t0
    path.write_text(json.dumps(out))
    print(f"wrote {path} ({out['seconds']:.0f} s)")


def _mean_se(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / max(len(xs) - 1, 1))
    return m, sd / math.sqrt(len(xs))


def _cells(data: dict, method: str, reduction: str, kind: str) -> list[str]:
    vals = [e["methods"][method][reduction] for e in data["prompts"]
            if e["kind"] == kind and reduction in e["methods"].get(method, {})]
    if not vals:
        return ["", ""]
    out = []
    for metric in ("hard_comprehensiveness", "hard_sufficiency"):
        m, se = _mean_se([v[metric] for v in vals])
        r = sum(v[metric + "_random"] for v in vals) / len(vals)
        out.append(f"{m:.2f} ± {se:.2f} ({r:.2f}; {len(vals)})")
    return out


def table(args) -> None:  # noqa: ARG001
    lines = ["# Faithfulness per attribution method x per-token reduction (issue 35, item 4)", "",
             "Generated by `python bench/attribution_faith.py table` from `attribution_faith_<model>.json`, written by",
             "`python bench/attribution_faith.py run --model <model> --threads 1` from the scores stored in",
             "`attribution_grid_<model>.json` (the same prompts and attributions as `attribution_grid.md`).", "",
             "- Metrics (`interp.attribution.faithfulness`, the ReAGent paper's): **hard comprehensiveness**, the distance "
             "D (Hellinger-like, 0..~1.4) the next-token distribution moves when the method's top 10, 20, 30 and 50% of "
             "the tokens' embeddings are zeroed, averaged over the fractions (higher: the tokens it ranks first matter "
             "more); **hard sufficiency**, 1 - D when only those are kept (higher: they alone keep the prediction; "
             "negative when D > 1).",
             "- Each cell: mean ± SE over the prompts, then (the same metric for random importances drawn in the same "
             "call; prompts). Scores are min-max scaled, so they are judged as a ranking; a method that marks what "
             "matters with large *negative* scores (a signed sum) is judged as ranking those last.",
             "- Zeroing an embedding is not deleting a token (occlusion by deletion, the default, scores what deletion "
             "does), so these metrics favour no method by construction but do not measure the same intervention as the "
             "top-3 hit rate's ground truth either.", ""]
    for path in sorted(RESULTS.glob("attribution_faith_*.json")):
        data = json.loads(path.read_text())
        methods = [m for m in ORDER if any(m in e["methods"] for e in data["prompts"])]
        kept = ", BOS never masked nor ranked (`keep_first`)" if data.get("keep_first") else ""
        lines += [f"## {data['model']}{kept} (`{path.name}`, {data['date']}, {data['n_samples']} soft samples, "
                  f"{len(data['prompts'])} prompts)", "",
                  "| method | reduction | induction hard comp. | induction hard suff. | fact hard comp. | fact hard suff. |",
                  "|---|---|---|---|---|---|"]
        for m in methods:
            reductions = sorted({r for e in data["prompts"] for r in e["methods"].get(m, {})},
                                key=lambda r: ("sum", "l2", "abs_sum", "-").index(r))
            for r in reductions:
                lines.append(f"| {m} | {r} | " + " | ".join(_cells(data, m, r, "induction") + _cells(data, m, r, "fact")) + " |")
        lines.append("")
    out = RESULTS / "attribution_faith.md"
    old = out.read_text() if out.exists() else ""
    keep = old[old.index(READING):] if READING in old else ""  # the hand-written reading below the tables stays
    out.write_text("\n".join(lines) + ("\n" + keep if keep else ""))
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "table"])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n-samples", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--first", type=int, default=10**6, help="run: only the first N prompts of each kind")
    ap.add_argument("--keep-first", action="store_true", help="run: never mask the first (BOS) position")
    ap.add_argument("--out", default="", help="run: the JSON to write (default: attribution_faith_<model>[_keep_first].json)")
    args = ap.parse_args()
    {"run": run, "table": table}[args.command](args)


if __name__ == "__main__":
    main()
