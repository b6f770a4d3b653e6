"""Benchmark: streaming ``interp.extreme.scan`` vs the naive ``run_with_cache`` approach (cache everything, then reduce).

Each measurement runs in a fresh subprocess so its peak resident memory (``ru_maxrss``) is its own; the table shows
the peak RSS above the process's RSS after loading the model (the memory the analysis itself needed), and the
median throughput (tokens/s) of ``--repeats`` runs. Random-weight GPT-2 models, random token ids (BOS first).

    python bench/extreme.py                 # the full table (a few minutes on 2 CPU cores)
    python bench/extreme.py --quick         # small subset
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

MODELS = {"stories-sized": dict(d_model=128, n_layers=4, n_heads=4), "larger": dict(d_model=256, n_layers=6, n_heads=8)}


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one(method: str, model_key: str, seq: int, n_texts: int, repeats: int, batch_size: int) -> dict:
    """Run one measurement in this process; returns a JSON-able dict."""
    import torch

    torch.set_num_threads(1)
    from interp.extreme import scan
    from interp.extreme.naive import naive_scan
    from interp.models import load_model
    from interp.testing import random_model_dir

    model = load_model(random_model_dir("gpt2", n_ctx=max(seq, 64), **MODELS[model_key]), device="cpu")
    ids = torch.randint(0, 30, (n_texts, seq), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = model.tokenizer.bos_token_id
    torch.set_grad_enabled(False)
    base = _rss_mb()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if method == "scan":
            scan(model, ids, batch_size=batch_size, progress=False)
        else:
            naive_scan(model, ids)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    med = statistics.median(times)
    return {"method": method, "model": model_key, "seq": seq, "texts": n_texts, "extra_mb": peak - base,
            "tok_per_s": n_texts * seq / med, "median_s": med}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--one", nargs=4, metavar=("METHOD", "MODEL", "SEQ", "TEXTS"), help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1, help="scan batch size (naive runs one text per pass, like the default)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="+", metavar="MODEL:SEQ:TEXTS", help="run only these cells, e.g. stories-sized:2048:2")
    a = p.parse_args(argv)
    if a.one:
        m, k, s, n = a.one
        print(json.dumps(one(m, k, int(s), int(n), a.repeats, a.batch_size)))
        return 0
    # (model, seq, texts): throughput at each length, then memory as the number of texts grows
    plan = [("stories-sized", 128, 16), ("stories-sized", 512, 8), ("stories-sized", 2048, 2),
            ("larger", 128, 8), ("larger", 512, 4), ("larger", 2048, 1),
            ("stories-sized", 512, 4), ("stories-sized", 512, 16), ("stories-sized", 512, 32)]
    if a.quick:
        plan = [("stories-sized", 128, 16), ("stories-sized", 512, 4), ("stories-sized", 512, 16)]
    if a.only:
        plan = [(k, int(s), int(n)) for k, s, n in (x.split(":") for x in a.only)]
    rows = []
    print(f"{'model':>14} {'seq':>5} {'texts':>5} | {'scan MB':>8} {'naive MB':>9} | {'scan tok/s':>10} {'naive tok/s':>11}")
    for model_key, seq, n in plan:
        res = {}
        for method in ("scan", "naive"):
            cmd = [sys.executable, __file__, "--one", method, model_key, str(seq), str(n), "--repeats", str(a.repeats),
                   "--batch-size", str(a.batch_size)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            res[method] = json.loads(out)
        rows.append(res)
        s, v = res["scan"], res["naive"]
        print(f"{model_key:>14} {seq:>5} {n:>5} | {s['extra_mb']:>8.0f} {v['extra_mb']:>9.0f} | "
              f"{s['tok_per_s']:>10.0f} {v['tok_per_s']:>11.0f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
