"""GrAInS vs mean difference (CAA) on SmolLM2 with the sentiment contrast set (``interp.steering.sentiment``).

Fit both on ``--fit`` train examples (spread over the 7 train templates), choose layer and alpha on other train
examples and train prose (largest mean log-prob gap with perplexity up < ``--max-ppl`` relative), then report
the held-out gain (held-out templates) and the perplexity cost on held-out prose (Python's reference manual).

    .venv/bin/python bench/grains_real.py --fit 16
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch


def prose_texts(split: str, n: int, words: int = 60) -> list[str]:
    from interp.corpora import prose

    return [" ".join(p.split()[:words]) for p in prose(split)[:n]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--fit", type=int, default=16)
    ap.add_argument("--select", type=int, default=16)
    ap.add_argument("--layers", default="8,12,16,20")
    ap.add_argument("--fractions", default="0.1,0.25,0.5", help="alphas as fractions of the layer's residual norm")
    ap.add_argument("--max-ppl", type=float, default=0.10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--ig-steps", type=int, default=21,
                    help="GrAInS: the most IG points per sequence (fit_grains n_steps; 21 is its default)")
    ap.add_argument("--aggregate", default="pca", help="GrAInS: fit_grains aggregate (pca, its default, or mean)")
    ap.add_argument("--read", default="last", help="GrAInS: fit_grains read position (last, its default, or prompt)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    import interp
    from interp.steering import evaluate, fit_grains, fit_mean_difference
    from interp.steering.sentiment import sentiment_contrast

    model = interp.load_model(args.model, device=args.device)
    train, held = sentiment_contrast("train"), sentiment_contrast("heldout")
    step = len(train) // args.fit
    fit_set = train[::step][: args.fit]
    sel_set = train[step // 2 :: step][: args.select]
    layers = [int(x) for x in args.layers.split(",")]
    fr = [float(x) for x in args.fractions.split(",")]
    t = time.perf_counter()
    grains = fit_grains(model, fit_set, layers=layers, n_steps=args.ig_steps, aggregate=args.aggregate, read=args.read,
                        progress=False)
    t_g = time.perf_counter() - t
    t = time.perf_counter()
    md = fit_mean_difference(model, fit_set, layers)
    t_md = time.perf_counter() - t
    print(f"## {args.model}: GrAInS (IG up to {args.ig_steps} points, aggregate {args.aggregate}, read {args.read}) "
          f"vs mean difference, {len(fit_set)} fit examples, "
          f"{args.threads} thread(s), {args.device}\n")
    print(f"fit time: GrAInS {t_g:.1f} s (IG completeness error, mean {grains.meta['completeness_error']:.2%}), "
          f"mean difference {t_md:.1f} s")
    print("cosine(GrAInS, mean difference) per layer: "
          + ", ".join(f"{layer}: {float(torch.cosine_similarity(grains.vector(layer), md.vector(layer), 0)):+.2f}" for layer in layers))
    norms = dict(zip(layers, md.meta["resid_norm"]))
    sel_prose = prose_texts("train", 4)
    best = {}
    print("\n### selection on train (mean gap, perplexity rise)\n\n| method | layer | alpha | mean gap | ppl rise |\n|---|---|---|---|---|")
    for layer in layers:
        alphas = [round(f * norms[layer], 2) for f in fr]
        ev = evaluate(model, {"grains": grains, "mean_difference": md}, sel_set, alphas=alphas, fluency_texts=sel_prose,
                      layers=[layer], progress=False)
        for name, a, _acc, gap, _ppl, rise in ev.rows():
            if a == 0.0:
                continue
            print(f"| {name} | {layer} | {a} | {gap:.2f} | {rise:+.1%} |", flush=True)
            if rise < args.max_ppl and (name not in best or gap > best[name][2]):
                best[name] = (layer, a, gap)
    print(f"\nchosen on train (max mean gap with ppl rise < {args.max_ppl:.0%}): {best}")
    held_prose = prose_texts("heldout", 8)
    print("\n### held-out (templates 7-9, 72 examples; perplexity on 8 held-out prose paragraphs)\n")
    print("| method | layer | alpha | accuracy | mean gap | gain | perplexity | ppl rise |\n|---|---|---|---|---|---|---|---|")
    for name, vec in (("grains", grains), ("mean_difference", md)):
        if name not in best:
            print(f"| {name} | - | no alpha within the perplexity limit | | | | | |")
            continue
        layer, a, _ = best[name]
        ev = evaluate(model, {name: vec}, held, alphas=[a / 2, a, 2 * a], fluency_texts=held_prose, layers=[layer], progress=False)
        g0 = float(ev.mean_gap[0, 0])
        for _m, alpha, acc, gap, ppl, rise in ev.rows():
            print(f"| {name} | {layer} | {alpha} | {acc:.2f} | {gap:.2f} | {gap - g0:+.2f} | {ppl:.2f} | {rise:+.1%} |", flush=True)


if __name__ == "__main__":
    main()
