"""``python -m interp.lens train-tuned MODEL [--corpus stories|prose|code] [--out DIR] [--steps N]``: train and
save a tuned lens.

The corpus defaults to ``stories`` for the bundled ``stories`` model and to ``prose`` (Python's reference manual,
``interp.corpora``) for any other model. Prints the held-out KL of the logit and the tuned lens per layer.
"""

from __future__ import annotations

import argparse
import sys

import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m interp.lens")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train-tuned", help="train a tuned lens on the stories corpus and save it")
    t.add_argument("model", help="model to train it for (zoo name or HF directory)")
    t.add_argument("--out", help="output folder (default data/lenses/<name>-tuned)")
    t.add_argument("--steps", type=int, default=400)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--docs", type=int, default=2000, help="training documents (train split; at most what the corpus has)")
    t.add_argument("--corpus", choices=["stories", "prose", "code"], help="training text (default: stories for stories, else prose)")
    t.add_argument("--max-len", type=int, help="cut each document to this many tokens (default: whole documents)")
    t.add_argument("--heldout-docs", type=int, default=200, help="held-out documents for the KL table")
    t.add_argument("--half", action="store_true", help="store the lens in float16 (half the file size)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)

    from interp.errors import run_command

    return run_command("python -m interp.lens", lambda: _train_tuned(a, argv))


def _train_tuned(a: argparse.Namespace, argv: list[str] | None) -> int:
    """Train, save and summarise one tuned lens (``InterpError`` on bad input); returns 0."""
    from pathlib import Path

    from interp.lens.bundled import LENS_DIR, stories_texts
    from interp.lens.tuned import TunedLens, heldout_kl
    from interp.models import load_model
    from interp.zoo import bundled_name

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = load_model(a.model, device="cpu")
    corpus = a.corpus or ("stories" if bundled_name(a.model) == "stories" else "prose")
    if corpus == "stories":
        train, held = stories_texts(a.docs, "train"), stories_texts(a.heldout_docs, "heldout")
    else:
        from interp.corpora import DOMAINS, cut_to_tokens

        train, held = DOMAINS[corpus]("train")[: a.docs], DOMAINS[corpus]("heldout")[: a.heldout_docs]
        if a.max_len:
            train, held = cut_to_tokens(train, model, a.max_len), cut_to_tokens(held, model, a.max_len)
    lens = TunedLens.train(model, train, steps=a.steps, batch_size=a.batch_size, lr=a.lr, seed=a.seed, max_len=a.max_len)
    out = Path(a.out) if a.out else LENS_DIR / f"{Path(a.model).name}-tuned"
    out.parent.mkdir(parents=True, exist_ok=True)
    logit, tuned = heldout_kl(model, held), heldout_kl(model, held, lens)
    lens.info["corpus"] = corpus
    lens.info["heldout_docs"] = len(held)
    lens.info["heldout_kl_logit"] = [round(x, 5) for x in logit.tolist()]
    lens.info["heldout_kl_tuned"] = [round(x, 5) for x in tuned.tolist()]
    lens.info["command"] = "python -m interp.lens " + " ".join(argv if argv is not None else sys.argv[1:])
    lens.save(out, dtype=torch.float16 if a.half else torch.float32)
    print(f"wrote {out}")
    print("held-out KL(final || lens) per layer, nats")
    for i, (a_, b_) in enumerate(zip(logit.tolist(), tuned.tolist())):
        print(f"  row {i}: logit {a_:.4f}  tuned {b_:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
