"""GrAInS on the SmolLM2 VLM (frozen SmolLM2-135M + the connector trained here): image prompts through the whole
pipeline, and a planted colour direction that steers held-out answers both ways.

The hallucination comparison itself (held-out accuracy, GrAInS vs mean difference at equal caption perplexity) is
bench/vlm_grains.py -> bench/results/vlm_grains.md; its outcome (no rise beyond noise: the errors are binding errors,
another object's colour) is why this test checks the planted direction instead of an accuracy rise.

Planted direction, measured with the settings below (one thread, 21 IG points): fitted on 8 train cuts whose answer is
red, contrasted with blue, read at the last prompt token, the layer-20 vector moves log P(red) - log P(blue) on 18
held-out cuts (6 scenes, every colour) from -2.52 to -1.81 at alpha = +0.2 x the residual norm and to -3.59 at -0.2 x,
caption perplexity +3.7% / +4.3%. The thresholds (0.35 and 0.5 nats each way) are half the measured moves: the run is
seeded, so they only leave room for another CPU's float rounding; float32 noise in a gap is about 1e-4 nats.
"""

from __future__ import annotations

import pytest
import torch

from interp.steering.data import VisionContrast
from interp.steering.scenes import scene_captions, scene_contrast
from interp.steering.scoring import encode_parts
from interp.steering.vision import evaluate_vlm, fit_grains_vlm

LAYER = 20


@pytest.fixture(scope="module")
def vlm():
    from interp import load_model

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_model("smollm2-vlm", device="cpu")
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def planted(vlm):
    train = [VisionContrast(e.prompt, " red", " blue", e.entity) for e in scene_contrast("train", 40) if e.preferred == " red"]
    vec = fit_grains_vlm(vlm, train[:8], layers=[LAYER], read="prompt", n_steps=21, progress=False)
    held = [VisionContrast(e.prompt, " red", " blue", e.entity) for e in scene_contrast("heldout", 6)]
    scale = 0.2 * vec.meta["resid_norm"][0]
    ev = evaluate_vlm(vlm, vec, held, alphas=[-scale, scale], captions=scene_captions("heldout", 3), progress=False)
    return vec, held, ev, scale


def test_planted_colour_direction_steers_held_out_answers(planted):
    vec, _, ev, scale = planted
    assert vec.meta["masked_visual"] > 0.3  # the selection takes visual tokens (0.78 measured)
    minus, zero, plus = (float(ev.mean_gap[0, ev.alphas.index(a)]) for a in (-scale, 0.0, scale))
    assert plus > zero + 0.35 and minus < zero - 0.5, (minus, zero, plus)
    rise = ev.perplexity[0] / ev.baseline_perplexity() - 1
    assert float(rise.max()) < 0.15, rise  # +3.7% / +4.3% measured


def test_visual_path_matches_the_model_forward(vlm, planted):
    """The evaluation puts the connector's output at the image slots of plain ids; its unsteered gaps equal those of
    the model's own forward with pixel_values to 1e-4 nats (float32 rounding of a 49k-way log-softmax)."""
    _, held, ev, _ = planted
    j0 = ev.alphas.index(0.0)
    for n, e in enumerate(held[:6]):
        enc, vin = encode_parts(vlm, e)
        with torch.no_grad():
            logp = torch.log_softmax(vlm(enc.prompt[None], **vin.forward_kwargs())[0, -1].double(), -1)
        gap = float(logp[int(enc.preferred[0])] - logp[int(enc.dispreferred[0])])
        assert abs(gap - float(ev.gaps[0, j0, n])) < 1e-4
