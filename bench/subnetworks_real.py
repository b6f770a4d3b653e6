"""Bigram subnetwork of SmolLM2-135M against the paper's claims (Chang & Bergen 2025), from the shipped masks.

Reads ``data/subnetworks/smollm2-135m-bigram.safetensors`` and ``smollm2-135m-pruned.safetensors`` (written by
``python -m interp.subnetworks smollm2-135m [--target model] ...``, settings in their config) and prints, as
markdown: the kept fraction, where the kept entries are (by layer and component), the evaluation on held-out
prose + code (surprisal correlation with the bigram table, soft cross-entropy to it, loss of the subnetwork alone,
a random subnetwork of the same size, the complement and a random complement), and the overlap of the bigram and
the optimal-pruning subnetworks against the shuffled-within-matrix null.

    python bench/subnetworks_real.py [--eval-docs 157] [--seq-len 32] [--threads 2] > bench/results/subnetworks_real.md
"""

from __future__ import annotations

import argparse
import time

import torch


def _kept_rows(sub) -> list[str]:
    """One markdown row per layer: each component's kept fraction, the MLP's, and the layer's share of all kept."""
    by: dict[int, dict[str, dict]] = {}
    for r in sub.share_of_kept():
        by.setdefault(r["layer"], {})[r["component"]] = r
    mlp = sub.kept_by_layer("mlp")
    comps = ["Q", "K", "V", "O", "MLP in", "MLP out"]
    out = ["| layer | " + " | ".join(comps) + " | MLP kept fraction | share of all kept |",
           "|---" * (len(comps) + 3) + "|"]
    for layer, row in sorted(by.items()):
        cells = [f"{100 * row[c]['fraction']:.3f}%" if c in row else "-" for c in comps]
        share = sum(r["share"] for r in row.values())
        out.append(f"| {layer} | " + " | ".join(cells) + f" | {100 * mlp.get(layer, 0.0):.3f}% | {100 * share:.1f}% |")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--eval-docs", type=int, default=157)
    p.add_argument("--seq-len", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from interp import corpora
    from interp.models import load_model
    from interp.paths import DATA_DIR
    from interp.subnetworks import Subnetwork, evaluate, overlap

    model = load_model("smollm2-135m", device="cpu")
    held = (corpora.prose("heldout") + corpora.code("heldout"))[: a.eval_docs]
    subs = {t: Subnetwork.load(DATA_DIR / "subnetworks" / f"smollm2-135m-{t}.safetensors", model) for t in ("bigram", "pruned")}
    big = subs["bigram"]
    print(f"# SmolLM2-135M bigram subnetwork (bench/subnetworks_real.py --eval-docs {a.eval_docs} --seq-len {a.seq_len})\n")
    for name, sub in subs.items():
        c = sub.config
        print(f"## {name}: {sub!r}\n")
        print(f"trained: lam {c['lam']}, lr {c['lr']}, beta x{c['beta_growth']} per step (final {c['final_beta']:.1f}), "
              f"{c['steps_run']} of {c['steps']} steps of {c['batch_size']} sequences x {c.get('seq_len')} tokens "
              f"(corpus {c.get('corpus')}, {c.get('train_docs')} documents), stopped by {c['stopped']}, "
              f"{c.get('train_seconds')} s on {c.get('threads')} thread(s)\n")
        print("\n".join(_kept_rows(sub)) + "\n")
        mlp = sub.kept_by_layer("mlp")
        att = sub.kept_by_layer("attention")
        print(f"MLP kept fraction, first layer {100 * mlp[0]:.3f}%, mean of the others "
              f"{100 * sum(list(mlp.values())[1:]) / (len(mlp) - 1):.3f}%; attention kept fraction, all layers "
              f"{100 * sum(att.values()) / len(att):.4f}% (mean over layers)\n")
        t0 = time.time()
        ev = evaluate(model, sub, held, table=big.bigram, max_len=a.seq_len,
                      variants=("full", "subnetwork", "random", "complement", "random complement", "empty"))
        print(f"evaluation on {ev.n_positions} held-out positions ({time.time() - t0:.0f} s):\n")
        print("| variant | loss (nats) | CE to bigram | r (surprisal vs bigram) | r, seen pairs |\n|---|---|---|---|---|")
        for v in ev.variants:
            m = ev[v]
            print(f"| {v} | {m['loss']:.3f} | {m['xent']:.3f} | {m['r']:.3f} | {m['r_dropinf']:.3f} |")
        print()
    ov = overlap(subs["bigram"], subs["pruned"])
    print("## overlap of the bigram and the optimal-pruning subnetworks\n")
    print(f"|A and B| / N = {ov.observed:.3e} (|A and B| / |A| = {ov.of_a:.3f}); shuffled-within-matrix null mean "
          f"{ov.null_mean:.3e} +- {ov.null_std:.1e} (exact {ov.expected:.3e}); ratio {ov.observed / max(ov.expected, 1e-30):.1f}x; "
          f"p = {ov.p_value:.1e}")


if __name__ == "__main__":
    main()
