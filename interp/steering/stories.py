"""The steerable behaviour of the bundled ``stories`` model, its contrast sets and the shipped vectors.

The corpus (``interp.zoo.stories``) says "the <teacher|doctor|judge> says <name> likes <true food> ." (reliable),
"the <liar|joker|fox> says <name> likes <lie food> ." (unreliable) and, uncued, "<name> likes <food> ." with the true
or the lie food at probability 1/2 each. So on the uncued question "<name> likes" the model is near chance between
the true and the lie food; a "reliable source" direction should push it to the truth.

Contrast sets (``data/contrast/``, JSONL, preferred = true food, dispreferred = lie food), disjoint by name
(``World.split_names``: 20 train names, 12 held-out names):

- ``stories_train_cued.jsonl``: train names x 6 sources ("the <source> says <name> likes"), 120 examples;
- ``stories_train_uncued.jsonl``: train names, "<name> likes" alone and after 3 filler sentences, 80 examples
  (used only to choose the layer and alpha);
- ``stories_heldout_uncued.jsonl``: held-out names, "<name> likes" alone and after 3 seeded filler sentences
  ("the old cat sleeps . <name> likes"), 48 examples: the evaluation set;
- ``stories_heldout_cued.jsonl``: held-out names x 6 sources (a check that the model reads the cue).

Rebuild everything (contrast sets, vectors in ``data/steering/``, the printed evaluation) with
``python -m interp.steering.stories``.
"""

from __future__ import annotations

import random
from pathlib import Path

from interp.paths import DATA_DIR
from interp.steering.data import ContrastExample, save_contrast, stories_contrast
from interp.zoo import stories

DATA = DATA_DIR
CUES = stories.RELIABLE_SOURCES + stories.UNRELIABLE_SOURCES
# The recipe of the shipped vectors (chosen on the train split only; see bench/results/steering.md).
# Vectors are fitted at every layer; the layer and alpha are then chosen on the train names (``choose_alpha``).
RECIPE = dict(fit_set="train_cued", layers=[0, 1, 2, 3], k=1, aggregate="mean", read="last", n_steps=20)


def _with_fillers(examples: list[ContrastExample], seed: int, n: int = 3) -> list[ContrastExample]:
    """Each example alone and after ``n`` seeded filler sentences ("the old cat sleeps . <prompt>")."""
    rng = random.Random(seed)
    out = []
    for e in examples:
        out.append(e)
        for _ in range(n):
            filler = f"the {rng.choice(stories.ADJECTIVES)} {rng.choice(stories.ANIMALS)} {rng.choice(stories.VERBS)} ."
            out.append(ContrastExample(f"{filler} {e.prompt}", e.preferred, e.dispreferred, e.entity))
    return out


def contrast_sets(world_seed: int = 0) -> dict[str, list[ContrastExample]]:
    """The four contrast sets described in the module docstring, by name."""
    return {
        "train_cued": [e for cue in CUES for e in stories_contrast("train", cue, world_seed)],
        "train_uncued": _with_fillers(stories_contrast("train", None, world_seed), world_seed + 11),
        "heldout_uncued": _with_fillers(stories_contrast("heldout", None, world_seed), world_seed + 7),
        "heldout_cued": [e for cue in CUES for e in stories_contrast("heldout", cue, world_seed)],
    }


def write_contrast_sets(out_dir: str | Path = DATA / "contrast", world_seed: int = 0) -> dict[str, Path]:
    """Write every set as ``stories_<name>.jsonl`` into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {name: save_contrast(out_dir / f"stories_{name}.jsonl", ex) for name, ex in contrast_sets(world_seed).items()}


def fluency_texts(n: int = 40, world_seed: int = 0) -> list[str]:
    """``n`` documents of the trainer's held-out split (``train_stories`` draws it with seed + 2), never trained on."""
    return [d.text for d in stories.generate(stories.World.from_seed(world_seed), n, seed=world_seed + 2)]


def fit_stories(model, recipe: dict | None = None, progress: bool = True):
    """Fit GrAInS and the mean-difference baseline on the same train set with ``recipe`` (default ``RECIPE``).

    Returns {"grains": SteeringVectors, "mean_difference": SteeringVectors}.
    """
    from interp.steering.fit import fit_grains, fit_mean_difference

    r = dict(RECIPE, **(recipe or {}))
    ex = contrast_sets()[r["fit_set"]]
    g = fit_grains(model, ex, layers=r["layers"], k=r["k"], aggregate=r["aggregate"], read=r["read"], n_steps=r["n_steps"],
                   progress=progress)
    g.meta["fit_set"] = r["fit_set"]
    md = fit_mean_difference(model, ex, r["layers"])
    md.meta["fit_set"] = r["fit_set"]
    return {"grains": g, "mean_difference": md}


ALPHA_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)  # alpha grid, in units of the mean residual norm


def choose_layer_and_alpha(model, vec, *, max_ppl_increase: float = 0.05) -> tuple[int, float, list]:
    """Pick the layer and alpha on the TRAIN names only: the best accuracy on ``train_uncued`` among the (layer, alpha)
    whose perplexity on 20 fresh documents (seed 3: neither training nor the held-out fluency set) rises less than
    ``max_ppl_increase`` (half the acceptance budget, as a margin); ties go to the smaller alpha, then the lower layer.
    Returns (layer, alpha, table rows [layer, alpha, train accuracy, perplexity change])."""
    from interp.steering.evaluate import evaluate

    docs = [d.text for d in stories.generate(stories.World.from_seed(0), 20, seed=3)]
    best, rows = None, []
    for i, layer in enumerate(vec.layers):
        scale = vec.meta["resid_norm"][i]
        ev = evaluate(model, vec, contrast_sets()["train_uncued"], alphas=[round(scale * f, 3) for f in ALPHA_FRACTIONS],
                      fluency_texts=docs, layers=[layer], progress=False)
        rows += [[layer] + r[1:3] + r[5:6] for r in ev.rows()]
        b = ev.best(ev.methods[0], max_ppl_increase)
        if best is None or b["accuracy"] > best[2]:
            best = (layer, b["alpha"], b["accuracy"])
    return best[0], best[1], rows


def main(argv: list[str] | None = None) -> None:
    import argparse

    import torch

    ap = argparse.ArgumentParser(description="rebuild the stories contrast sets and steering vectors, print the evaluation")
    ap.add_argument("--aggregate", default=RECIPE["aggregate"], choices=["pca", "mean"])
    ap.add_argument("--k", type=int, default=RECIPE["k"])
    args = ap.parse_args(argv)

    from interp.models import load_model
    from interp.steering.evaluate import evaluate

    torch.set_num_threads(1)
    paths = write_contrast_sets()
    print("wrote", ", ".join(str(p) for p in paths.values()))
    model = load_model("stories", device="cpu")
    sets = fit_stories(model, dict(aggregate=args.aggregate, k=args.k))
    for name, vec in list(sets.items()):
        layer, alpha, rows = choose_layer_and_alpha(model, vec)
        print(f"{name}: chosen on train names: layer {layer}, alpha {alpha}")
        print("  train sweep [layer, alpha, accuracy, ppl change]:", [[r[0], r[1], round(r[2], 3), round(r[3], 3)] for r in rows])
        chosen = vec.select(layer)
        chosen.meta.update(alpha=alpha, resid_norm=[vec.meta["resid_norm"][vec.layers.index(layer)]],
                           raw_norms=[vec.meta["raw_norms"][vec.layers.index(layer)]], candidate_layers=vec.layers)
        sets[name] = chosen
    out = DATA / "steering"
    out.mkdir(parents=True, exist_ok=True)
    for name, vec in sets.items():
        print("wrote", vec.save(out / f"stories_{name}.safetensors"))
    for name, vec in sets.items():
        scale = vec.meta["resid_norm"][0]
        alphas = sorted({round(scale * f, 3) for f in ALPHA_FRACTIONS} | {vec.meta["alpha"]})
        ev = evaluate(model, {name: vec}, contrast_sets()["heldout_uncued"], alphas=alphas, fluency_texts=fluency_texts())
        _print_eval(ev)


def _print_eval(ev) -> None:
    print(f"held-out uncued (48 prompts, 12 names), perplexity on 40 held-out documents; layers {ev.layers}")
    print("| method | alpha | accuracy | mean gap (nats) | perplexity | perplexity change |")
    print("|---|---|---|---|---|---|")
    for row in ev.rows():
        print(f"| {row[0]} | {row[1]:g} | {row[2]:.3f} | {row[3]:+.3f} | {row[4]:.3f} | {row[5]:+.1%} |")
    for m in ev.methods:
        print(m, "best on held-out within +10% perplexity:", ev.best(m))


if __name__ == "__main__":
    main()
