"""Token attribution finds the deciding patch on the zoo VLM: planted truth over visual tokens.

``scenes-vlm`` (data/models/scenes-vlm/MODEL_CARD.md) captions a scene of 1-3 objects in reading order after its 16
visual tokens (one per 12-px grid cell): " red circle, blue cross.". Cut the caption right before the k-th object's
colour word, or before its shape word, and the next word is decided by one patch, the k-th object's cell. For each
cut (prompt ``[pixels, caption so far]``, target the true next word), a method hits when that patch's visual token is
in its top 3 of the 16 visual tokens; random scores hit on 3/16 = 0.19 of cuts.

Measured on the 40 held-out scenes below (``max_objects=3``, 156 cuts; one CPU thread; binomial standard errors
+- 0.01-0.04): gradient norm 0.92, input x gradient 0.52 with its default signed sum and 1.00 with "abs_sum",
IG 0.88 with its default signed sum and 0.99 with "abs_sum" (completeness error under 1% on every cut: the adaptive
rule's tolerance), occlusion (the patch replaced by its image's mean visual token) 0.88, ReAGent 0.83, the random
method 0.17. The signed sums miss where the deciding patch's contribution is large but negative: 80 of the 94 misses
of signed input x gradient and IG have a negative score there, and 61 of them are in the top 3 by magnitude.

Thresholds: the issue's floor of 0.80 for gradient norm, input x gradient ("abs_sum"), IG (both reductions) and
occlusion; 0.70 for ReAGent (sampled, a looser method); random under 0.30 and at least 0.45 below each thresholded
method. Every run is deterministic (fixed scenes, seeds), so these are checks of the measured numbers; the margins
(signed IG and occlusion 0.88 vs 0.80, 3 standard errors, the tightest) say how far a retrained model may drift
before they trip.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from interp import load_model
from interp.attribution import attribute
from interp.zoo import scenes as world

N_SCENES = 40
RUNS = {  # name -> (method, options)
    "gradient_norm": ("gradient_norm", {}),
    "input_x_gradient": ("input_x_gradient", {}),
    "input_x_gradient_abs": ("input_x_gradient", {"reduction": "abs_sum"}),
    "integrated_gradients": ("integrated_gradients", {}),
    "integrated_gradients_abs": ("integrated_gradients", {"reduction": "abs_sum"}),
    "occlusion": ("occlusion", {}),
    "reagent": ("reagent", {}),
    "random": ("random", {}),
}
FLOORS = {"gradient_norm": 0.80, "input_x_gradient_abs": 0.80, "integrated_gradients": 0.80,
          "integrated_gradients_abs": 0.80, "occlusion": 0.80, "reagent": 0.70}


@pytest.fixture(scope="module")
def measured():
    """name -> (hits [cut] bool, worst IG completeness error or None)."""
    vlm = load_model("scenes-vlm", device="cpu")
    hits = {name: [] for name in RUNS}
    worst = {name: 0.0 for name in RUNS}
    for i in range(N_SCENES):
        s = world.scene(i, "heldout", max_objects=3)
        for text, word, (r, c) in s.caption_cuts():
            prompt = [s.pixels, text] if text else [s.pixels]
            target = vlm.tokenizer.encode(word, add_special_tokens=False)[:1]
            for name, (method, options) in RUNS.items():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # ReAGent's "no probe reached the stop condition"
                    a = attribute(vlm, prompt, target=target, method=method, **options)
                vis = a.info["visual"]
                want = vis["patches"].index([0, r, c])
                top = a.row(-1)[vis["positions"]].topk(3).indices.tolist()
                hits[name].append(want in top)
                if a.completeness_error is not None:
                    worst[name] = max(worst[name], float(a.completeness_error.max()))
    return {name: (torch.tensor(h), worst[name]) for name, h in hits.items()}


def _rate(hits: torch.Tensor) -> float:
    return float(hits.float().mean())


def test_enough_planted_cuts(measured):
    hits, _ = measured["random"]
    assert hits.numel() >= 100


@pytest.mark.parametrize("name", list(FLOORS))
def test_method_puts_the_deciding_patch_in_its_top_3(measured, name):
    rate = _rate(measured[name][0])
    floor = _rate(measured["random"][0])
    assert rate >= FLOORS[name], (name, rate)
    assert rate - floor >= 0.45, (name, rate, floor)


def test_random_floor_is_far_below(measured):
    floor = _rate(measured["random"][0])
    assert 0.05 < floor < 0.30, floor  # 3/16 expected


def test_ig_completeness_on_vlm_inputs(measured):
    for name in ("integrated_gradients", "integrated_gradients_abs"):
        assert measured[name][1] < 0.01, (name, measured[name][1])
