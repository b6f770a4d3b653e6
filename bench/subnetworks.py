"""Benchmark: cost of mask training and of the masked forward pass vs the plain model.

Prints medians of repeated runs side by side:
  - forward (no grad): plain bridge vs masked via functional_call with soft masks W*sigmoid(beta*m)
    vs the binary-mask context manager (``Subnetwork.only``);
  - one training step: unmasked (all weights, AdamW, on a copy) vs mask training (mask logits, AdamW);
  - peak memory of each training step (CUDA: max_memory_allocated; CPU: peak RSS growth of a fresh subprocess).

    python bench/subnetworks.py [--model stories] [--batch 8] [--seq 96] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time

import torch


def _setup(a):
    from interp.models import load_model
    from interp.testing import random_model

    model = random_model("gpt2") if a.model == "random" else load_model(a.model, device=a.device)
    vocab = min(int(model.cfg.d_vocab), 1000)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, vocab, (a.batch, min(a.seq, int(model.cfg.n_ctx))), generator=g).to(a.device)
    return model, ids


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, repeats: int, device: str) -> float:
    fn()
    _sync(device)
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def _steps(model, ids, device):
    """The four closures measured: plain forward, soft-masked forward, binary-masked forward, and the two training steps."""
    from interp.subnetworks import Subnetwork, find_maskable
    from interp.subnetworks.masking import frozen_parameters, masked_forward

    ws = find_maskable(model)
    params = dict(model.named_parameters())
    base = {w.name: params[w.name].detach() for w in ws}
    logits = {k: torch.zeros_like(v, requires_grad=True) for k, v in base.items()}
    opt_m = torch.optim.AdamW(list(logits.values()), lr=1e-2)
    sub = Subnetwork.from_masks(model, {k: torch.rand(v.shape) < 0.05 for k, v in base.items()})
    with torch.no_grad():  # the bridge keeps its last attention pattern; a grad-free pass makes it deep-copyable
        model(ids[:1, :2])
    train_copy = copy.deepcopy(model)
    train_copy.train()
    opt_w = torch.optim.AdamW(train_copy.parameters(), lr=1e-4)
    labels = ids

    def plain():
        with torch.no_grad():
            model(ids)

    def soft():
        with torch.no_grad():
            masked_forward(model, ids, {k: base[k] * torch.sigmoid(m) for k, m in logits.items()})

    def binary():
        with torch.no_grad(), sub.only(model):
            model(ids)

    def train_plain():
        out = train_copy(ids)[:, :-1]
        loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), labels[:, 1:].reshape(-1))
        opt_w.zero_grad(set_to_none=True)
        loss.backward()
        opt_w.step()

    def train_mask():
        with frozen_parameters(model):
            out = masked_forward(model, ids, {k: base[k] * torch.sigmoid(m) for k, m in logits.items()})[:, :-1]
            ce = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), labels[:, 1:].reshape(-1))
            loss = ce + 10 * sum(torch.sigmoid(m).sum() for m in logits.values()) / sum(m.numel() for m in logits.values())
            opt_m.zero_grad(set_to_none=True)
            loss.backward()
            opt_m.step()

    return {"forward plain": plain, "forward soft-masked": soft, "forward binary-masked": binary,
            "train step unmasked": train_plain, "train step mask": train_mask}


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _rss_growth(fn) -> float:
    """Peak RSS growth (MB) while ``fn`` runs, sampled every millisecond by a thread."""
    import threading

    base, peak, done = _rss_mb(), [0.0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.001)

    t = threading.Thread(target=watch)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    return max(peak[0], _rss_mb()) - base


def _peak_one(a, name: str) -> float:
    """Run one closure twice in a fresh process; peak memory (MB) of the second call above the state before it."""
    cmd = [sys.executable, __file__, "--model", a.model, "--batch", str(a.batch), "--seq", str(a.seq), "--device", a.device,
           "--threads", str(a.threads), "--peak", name]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["peak_mb"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="stories")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=96)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--peak")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    model, ids = _setup(a)
    fns = _steps(model, ids, a.device)
    if a.peak:  # child process: one closure, report peak memory growth
        if a.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            fns[a.peak]()
            fns[a.peak]()
            peak = (torch.cuda.max_memory_allocated() - base) / 2**20
        else:  # CPU: peak RSS sampled every ms during a second call, minus the RSS just before it
            fns[a.peak]()
            peak = _rss_growth(fns[a.peak])
        print(json.dumps({"peak_mb": peak}))
        return
    print(f"model {a.model}, batch {a.batch} x {ids.shape[1]} tokens, device {a.device}, threads {a.threads}, "
          f"median of {a.repeats}")
    times = {k: _time(f, a.repeats, a.device) for k, f in fns.items()}
    peaks = {k: _peak_one(a, k) for k in ("forward plain", "train step unmasked", "train step mask")}
    print(f"{'what':26s} {'median ms':>10s} {'x plain':>8s} {'peak MB':>9s}  (peak memory growth during one call)")
    for k, t in times.items():
        ref = times["forward plain"] if k.startswith("forward") else times["train step unmasked"]
        peak = f"{peaks[k]:9.0f}" if k in peaks else " " * 9
        print(f"{k:26s} {1000 * t:10.1f} {t / ref:8.2f} {peak}")
    print(f"mask-training steps per second: {1 / times['train step mask']:.2f}; unmasked training steps per second: "
          f"{1 / times['train step unmasked']:.2f}")


if __name__ == "__main__":
    main()
