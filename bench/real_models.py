"""Benchmark on a real LM (SmolLM2-135M from its PyPI GGUF wheel): loading, the streaming scan, the logit lens.

Each measurement runs in a fresh subprocess (its peak RSS is its own). Rows:

- ``load first``: dequantize the GGUF into an empty cache folder (``INTERP_CACHE`` set to a temporary folder) and load;
- ``load cached``: load again from the converted folder (no dequantization);
- ``scan`` vs ``run_with_cache``: tokens/s and memory above the loaded model of ``interp.extreme.scan`` and of caching every
  activation with ``run_with_cache`` (then reducing), on held-out prose paragraphs cut to ``--seq`` tokens;
- ``lens all layers`` (``logit_lens``: the stacked residual streams decoded a few layers per call) vs ``lens per layer``
  (a hand-written TransformerLens loop, one decode per layer, computing the same top-5, entropy and KL).

    python bench/real_models.py [--model smollm2-135m] [--threads 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def one(kind: str, model_name: str, seq: int, n_texts: int, repeats: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    from interp.models import load_model

    if kind.startswith("load"):
        t0 = time.perf_counter()
        load_model(model_name, device="cpu")
        return {"kind": kind, "median_s": time.perf_counter() - t0, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    from interp.corpora import cut_to_tokens, prose

    model = load_model(model_name, device="cpu")
    texts = cut_to_tokens(prose("heldout")[:n_texts], model, seq - 1)
    ids = [model.to_tokens(t) for t in texts]
    n_tok = sum(x.shape[1] for x in ids)
    base = _rss_mb()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if kind == "scan":
            from interp.extreme import scan

            scan(model, texts, batch_size=8, progress=False)
        elif kind == "run_with_cache":
            for x in ids:  # one text at a time, the usual hand-written loop
                _, cache = model.run_with_cache(x)
                [cache[f"blocks.{layer}.attn.hook_pattern"][0, :, 1:, 0].mean() for layer in range(model.cfg.n_layers)]
                [cache[f"blocks.{layer}.hook_resid_post"].abs().max() for layer in range(model.cfg.n_layers)]
                del cache
        elif kind == "lens all layers":
            from interp.lens.logit import logit_lens

            for x in ids:
                logit_lens(model, x)
        elif kind == "lens per layer":
            for x in ids:
                # the same statistics as logit_lens (top-5, entropy, KL to the output), one layer at a time
                logits, cache = model.run_with_cache(x, names_filter=lambda n: n.endswith("hook_resid_pre"))
                final = torch.log_softmax(logits.float(), -1)
                for layer in range(model.cfg.n_layers):
                    h = model.ln_final(cache[f"blocks.{layer}.hook_resid_pre"])
                    lp = torch.log_softmax(model.unembed(h).float(), -1)
                    p = lp.exp()
                    p.topk(5, -1), -(p * lp).sum(-1), (final.exp() * (final - lp)).sum(-1)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"kind": kind, "tokens": n_tok, "median_s": med, "tok_per_s": n_tok / med, "extra_mb": peak - base}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--texts", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.model, a.seq, a.texts, a.repeats, a.threads)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, INTERP_CACHE=cache)
        for kind in ["load first", "load cached", "scan", "run_with_cache", "lens all layers", "lens per layer"]:
            cmd = [sys.executable, __file__, "--one", kind, "--model", a.model, "--seq", str(a.seq), "--texts", str(a.texts),
                   "--repeats", str(a.repeats), "--threads", str(a.threads)]
            out = subprocess.run(cmd, env=env if kind.startswith("load") else os.environ, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    print(f"\n{a.model}, {a.texts} prose texts x {a.seq} tokens, {a.threads} thread(s), median of {a.repeats}\n")
    print("| measurement | median s | tokens/s | memory (MB) |\n|---|---|---|---|")
    for r in rows:
        mem = r.get("extra_mb", r.get("peak_mb"))
        label = "peak RSS" if "peak_mb" in r else "above the loaded model"
        tps = f"{r['tok_per_s']:.0f}" if "tok_per_s" in r else ""
        print(f"| {r['kind']} | {r['median_s']:.2f} | {tps} | {mem:.0f} ({label}) |")


if __name__ == "__main__":
    main()
