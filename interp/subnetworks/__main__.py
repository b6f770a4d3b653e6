"""Find and save the bigram subnetwork of a model: ``python -m interp.subnetworks stories``.

Writes ``data/subnetworks/<name>-bigram.safetensors`` (atomically) with the masks, the bigram table and the
held-out evaluation in its config. Ctrl-C (or SIGTERM) during training stops it, writes the masks reached so
far beside the output as ``<name>-bigram.partial.safetensors`` (config ``stopped: "interrupted"``, no
evaluation), leaves a complete file at the output untouched, and exits with status 130. Bad input (an unknown
model, a non-positive number) is one line on stderr and exit status 2. The bigram target is counted on the model's own tokenization of
the training corpus: for the zoo models ``stories`` documents (seed 1, the model's own training corpus, held-out
seed 2); for a real model (``--corpus``, default ``prose+code``) Python's reference manual and standard library,
train split (held-out split for the evaluation), each document cut to ``--seq-len`` tokens for training.
``--target model`` trains the "optimal pruning" subnetwork instead (the full model's own distribution as the target).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import torch

from interp.errors import InterpError, run_command
from interp.paths import DATA_DIR

OUT_DIR = DATA_DIR / "subnetworks"


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
    p.add_argument("--corpus", choices=["stories", "prose", "code", "prose+code"],
                   help="training text (default: stories for the zoo models, prose+code otherwise)")
    p.add_argument("--seq-len", type=int, help="cut every training and evaluation document to this many tokens")
    p.add_argument("--target", choices=["bigram", "model"], default="bigram",
                   help="bigram (Chang & Bergen) or model (optimal pruning: the full model's distribution)")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    old = signal.getsignal(signal.SIGTERM)
    if old is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm)  # SIGTERM stops training like Ctrl-C
    try:
        return run_command("python -m interp.subnetworks", lambda: _run(a))
    finally:
        if old is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def partial_path(out: Path) -> Path:
    """Where an interrupted run writes its masks: ``<stem>.partial.safetensors`` beside ``out``."""
    return out.with_name(f"{out.stem}.partial{out.suffix or '.safetensors'}")


def _sigterm(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def _run(a: argparse.Namespace) -> int:
    from interp.validate import check_float, check_int

    for name in ("steps", "batch_size", "train_docs", "eval_docs", "threads"):
        check_int(f"--{name.replace('_', '-')}", getattr(a, name), minimum=1)
    for name in ("lam", "lr", "beta_growth"):
        check_float(f"--{name.replace('_', '-')}", getattr(a, name), minimum=0.0)
    if a.seq_len is not None:
        check_int("--seq-len", a.seq_len, minimum=2)
    out = a.out or OUT_DIR / f"{Path(a.model).name}-{'bigram' if a.target == 'bigram' else 'pruned'}.safetensors"
    if out.is_dir():
        raise InterpError(f"--out {out} is a folder: give a file name such as {out / 'bigram.safetensors'}")
    torch.set_num_threads(a.threads)
    from interp.models import load_model
    from interp.subnetworks import bigram_table, evaluate, find_bigram_subnetwork, find_pruned_subnetwork

    model = load_model(a.model, device="cpu")
    corpus = _corpus_name(a)
    train, held = _corpus(a, corpus)
    table = bigram_table(model, train)  # counted on whole documents; training sees their first --seq-len tokens
    find = find_bigram_subnetwork if a.target == "bigram" else find_pruned_subnetwork
    extra = {"table": table} if a.target == "bigram" else {"bigram": table}
    t0 = time.time()
    sub = find(model, train, lam=a.lam, lr=a.lr, beta_growth=a.beta_growth, steps=a.steps, batch_size=a.batch_size,
               max_len=a.seq_len, **extra)
    secs = time.time() - t0
    if sub.config.get("stopped") == "interrupted":
        part = partial_path(out)
        part.parent.mkdir(parents=True, exist_ok=True)
        sub = type(sub)(sub.weights, sub.masks, sub.signature, sub.target, sub.bigram,
                        dict(sub.config, partial=True, train_seconds=round(secs, 1), threads=a.threads,
                             train_docs=len(train), corpus=corpus, seq_len=a.seq_len), sub.log)
        sub.save(part)
        kept = "; the complete file there is untouched" if out.exists() else ""
        print(f"python -m interp.subnetworks: interrupted at step {sub.config['steps_run']} of {a.steps}: "
              f"wrote the partial masks to {part}, not to {out}{kept}", file=sys.stderr)
        return 130
    ev = evaluate(model, sub, held, table=table, max_len=a.seq_len)
    summary = {v: ev[v] for v in ev.variants}
    sub = type(sub)(sub.weights, sub.masks, sub.signature, sub.target, sub.bigram,
                    dict(sub.config, train_seconds=round(secs, 1), threads=a.threads, train_docs=len(train),
                         eval_docs=len(held), corpus=corpus, seq_len=a.seq_len, evaluation=summary), sub.log)
    out.parent.mkdir(parents=True, exist_ok=True)
    sub.save(out)
    print(f"wrote {out}: {sub!r} in {secs:.0f} s")
    for r in sub.share_of_kept():
        print(f"  layer {r['layer']} {r['component']:8s} kept {r['kept']:7d}/{r['total']:7d} = {100 * r['fraction']:.3f}%  "
              f"share {100 * r['share']:.1f}%")
    for row in ev.rows():
        print("  ", row)
    return 0


def _corpus_name(a: argparse.Namespace) -> str:
    """``--corpus``, or its default chosen by the model (see the module docstring)."""
    from interp.zoo import ZOO_MODELS

    return a.corpus or ("stories" if a.model in ZOO_MODELS else "prose+code")


def _corpus(a: argparse.Namespace, name: str) -> tuple[list[str], list[str]]:
    """(training texts, held-out texts) of the corpus ``name``."""
    if name == "stories":
        from interp.zoo import stories

        world = stories.World.from_seed(0)
        return ([d.text for d in stories.generate(world, a.train_docs, seed=1)],
                [d.text for d in stories.generate(world, a.eval_docs, seed=2)])
    from interp import corpora

    parts = name.split("+")
    train = [t for part in parts for t in getattr(corpora, part)("train")][: a.train_docs]
    held = [t for part in parts for t in getattr(corpora, part)("heldout")][: a.eval_docs]
    return train, held


if __name__ == "__main__":
    raise SystemExit(main())
