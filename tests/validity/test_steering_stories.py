"""GrAInS on the bundled ``stories`` model: the steerable behaviour exists and the shipped vectors steer it.

Ground truth (``interp.zoo.stories``): reliable sources state the true food, unreliable ones the lie, and the
uncued "<name> likes" is true half the time, so the uncued question is answered near chance.
"""

from __future__ import annotations

import torch

from interp.steering import SteeringVectors, evaluate, fit_grains, load_contrast
from interp.steering.scoring import contrast_gaps, encode
from interp.steering.stories import DATA, contrast_sets, fluency_texts


def _accuracy(model, examples) -> float:
    return float((contrast_gaps(model, [encode(model, e) for e in examples]) > 0).double().mean())


def test_shipped_contrast_sets_match_the_generator_and_are_disjoint():
    sets = contrast_sets()
    for name, examples in sets.items():
        assert load_contrast(DATA / "contrast" / f"stories_{name}.jsonl") == examples
    train = {e.entity for e in sets["train_cued"]} | {e.entity for e in sets["train_uncued"]}
    held = {e.entity for e in sets["heldout_uncued"]} | {e.entity for e in sets["heldout_cued"]}
    assert train and held and not train & held


def test_behaviour_follows_cues_and_is_near_chance_uncued(stories):
    sets = contrast_sets()
    reliable = [e for e in sets["heldout_cued"] if e.prompt.split()[1] in ("teacher", "doctor", "judge")]
    unreliable = [e for e in sets["heldout_cued"] if e.prompt.split()[1] in ("liar", "joker", "fox")]
    assert _accuracy(stories, reliable) > 0.9 and _accuracy(stories, unreliable) < 0.1  # the cue decides the answer
    # uncued: 48 prompts over 12 names; a fair coin per name puts accuracy in [0.25, 0.75] with probability ~0.96
    assert 0.25 <= _accuracy(stories, sets["heldout_uncued"]) <= 0.75


def test_shipped_vectors_reproduce_and_steer_heldout_questions(stories):
    shipped = {m: SteeringVectors.load(DATA / "steering" / f"stories_{m}.safetensors") for m in ("grains", "mean_difference")}
    meta = shipped["grains"].meta
    refit = fit_grains(stories, contrast_sets()[meta["fit_set"]], layers=shipped["grains"].layers, k=meta["k"],
                       aggregate=meta["aggregate"], read=meta["read"], n_steps=meta["n_steps"],
                       exclude=meta["exclude"], ig_method=meta.get("ig_method", "gausslegendre"), progress=False)
    # the shipped file comes from this code and recipe (cos 0.99: float32 IG and SVD, summed in another order)
    assert float(torch.nn.functional.cosine_similarity(refit.vectors[0], shipped["grains"].vectors[0], dim=0)) > 0.99
    alpha = shipped["grains"].meta["alpha"]  # chosen on the TRAIN names (bench/results/steering.md), not on held-out
    ev = evaluate(stories, shipped, contrast_sets()["heldout_uncued"], alphas=[alpha], fluency_texts=fluency_texts(40),
                  progress=False)
    g = ev.methods.index("grains")
    j = ev.alphas.index(alpha)
    gain = float(ev.accuracy[g, j]) - ev.baseline_accuracy()
    ppl_rise = float(ev.perplexity[g, j]) / ev.baseline_perplexity() - 1
    assert gain >= 0.20 and ppl_rise < 0.10  # the acceptance floor, on names never used for fitting
