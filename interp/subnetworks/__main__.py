"""Find and save the bigram subnetwork of a model: ``python -m interp.subnetworks stories``.

Writes ``data/subnetworks/<name>-bigram.safetensors`` (atomically) with the masks, the bigram table and the
held-out evaluation in its config. The bigram target is counted on the model's own tokenization of
``stories`` training documents (seed 1, the model's own training corpus); evaluation uses held-out
documents (seed 2).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

OUT_DIR = Path(__file__).resolve().parents[2] / "data" / "subnetworks"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m interp.subnetworks", description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="stories")
    p.add_argument("--lam", type=float, default=10.0)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--beta-growth", type=float, default=1.01)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--train-docs", type=int, default=4000)
    p.add_argument("--eval-docs", type=int, default=200)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from interp.models import load_model
    from interp.subnetworks import evaluate, find_bigram_subnetwork
    from interp.zoo import stories

    model = load_model(a.model, device="cpu")
    world = stories.World.from_seed(0)
    train = [d.text for d in stories.generate(world, a.train_docs, seed=1)]
    held = [d.text for d in stories.generate(world, a.eval_docs, seed=2)]
    t0 = time.time()
    sub = find_bigram_subnetwork(model, train, lam=a.lam, lr=a.lr, beta_growth=a.beta_growth, steps=a.steps,
                                 batch_size=a.batch_size)
    secs = time.time() - t0
    ev = evaluate(model, sub, held)
    summary = {v: ev[v] for v in ev.variants}
    sub = type(sub)(sub.weights, sub.masks, sub.signature, sub.target, sub.bigram,
                    dict(sub.config, train_seconds=round(secs, 1), threads=a.threads, train_docs=a.train_docs,
                         eval_docs=a.eval_docs, evaluation=summary), sub.log)
    out = a.out or OUT_DIR / f"{Path(a.model).name}-bigram.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    sub.save(out)
    print(f"wrote {out}: {sub!r} in {secs:.0f} s")
    for r in sub.share_of_kept():
        print(f"  layer {r['layer']} {r['component']:8s} kept {r['kept']:7d}/{r['total']:7d} = {100 * r['fraction']:.3f}%  "
              f"share {100 * r['share']:.1f}%")
    for row in ev.rows():
        print("  ", row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
