"""The steerable behaviour of the bundled ``stories`` model, its contrast sets and the shipped vectors.

The corpus (``interp.zoo.stories``) says "the <teacher|doctor|judge> says <name> likes <true food> ." (reliable),
"the <liar|joker|fox> says <name> likes <lie food> ." (unreliable) and, uncued, "<name> likes <food> ." with the true
or the lie food at probability 1/2 each. So on the uncued question "<name> likes" the model is near chance between
the true and the lie food; a "reliable source" direction should push it to the truth.

Contrast sets (``data/contrast/``, JSONL, preferred = true food, dispreferred = lie food), disjoint by name
(``World.split_names``: 20 train names, 12 held-out names):

- ``stories_train_cued.jsonl``: train names x 6 sources ("the <source> says <name> likes"), 120 examples;
- ``stories_train_uncued.jsonl``: train names, "<name> likes", 20 examples;
- ``stories_heldout_uncued.jsonl``: held-out names, "<name> likes" alone and after 3 seeded filler sentences
  ("the old cat sleeps . <name> likes"), 48 examples: the evaluation set;
- ``stories_heldout_cued.jsonl``: held-out names x 6 sources (a check that the model reads the cue).

Rebuild everything (contrast sets, vectors in ``data/steering/``, the printed evaluation) with
``python -m interp.steering.stories``.
"""

from __future__ import annotations

import random
from pathlib import Path

from interp.steering.data import ContrastExample, save_contrast, stories_contrast
from interp.zoo import stories

DATA = Path(__file__).resolve().parents[2] / "data"
CUES = stories.RELIABLE_SOURCES + stories.UNRELIABLE_SOURCES
# The recipe of the shipped vectors (chosen on the train split only; see bench/results/steering.md).
RECIPE = dict(fit_set="train_cued", layers=[1], k=2, aggregate="pca", read="last", n_steps=20)


def contrast_sets(world_seed: int = 0) -> dict[str, list[ContrastExample]]:
    """The four contrast sets described in the module docstring, by name."""
    train_cued = [e for cue in CUES for e in stories_contrast("train", cue, world_seed)]
    held_bare = stories_contrast("heldout", None, world_seed)
    rng = random.Random(world_seed + 7)
    held = []
    for e in held_bare:
        held.append(e)
        for _ in range(3):
            filler = f"the {rng.choice(stories.ADJECTIVES)} {rng.choice(stories.ANIMALS)} {rng.choice(stories.VERBS)} ."
            held.append(ContrastExample(f"{filler} {e.prompt}", e.preferred, e.dispreferred, e.entity))
    return {
        "train_cued": train_cued,
        "train_uncued": stories_contrast("train", None, world_seed),
        "heldout_uncued": held,
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


def main() -> None:
    import torch

    from interp.models import load_model
    from interp.steering.evaluate import evaluate

    torch.set_num_threads(1)
    paths = write_contrast_sets()
    print("wrote", ", ".join(str(p) for p in paths.values()))
    model = load_model("stories", device="cpu")
    sets = fit_stories(model)
    out = DATA / "steering"
    out.mkdir(parents=True, exist_ok=True)
    for name, vec in sets.items():
        print("wrote", vec.save(out / f"stories_{name}.safetensors"))
    scale = sets["grains"].meta["resid_norm"][0]
    alphas = [round(scale * f, 3) for f in (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0)]
    ev = evaluate(model, sets, contrast_sets()["heldout_uncued"], alphas=alphas, fluency_texts=fluency_texts())
    print("method | alpha | accuracy | mean gap | perplexity | ppl change")
    for row in ev.rows():
        print(f"{row[0]} | {row[1]:g} | {row[2]:.3f} | {row[3]:+.3f} | {row[4]:.3f} | {row[5]:+.1%}")
    for m in ev.methods:
        print(m, "best within +10% perplexity:", ev.best(m))


if __name__ == "__main__":
    main()
