"""Extreme tokens in the SmolLM2 VLM's inputs: the first (BOS) token keeps the massive activations and most of the
largest ones, and visual tokens take less attention than uniform attention would give them.

Measured by ``bench/vlm_extreme.py`` on 40 held-out scene questions (bench/results/vlm_extreme.md): 680 of 680 massive
activations at the first token (none at a visual or text token), the first token holds every prompt's largest
activation in 26 of 30 layers, visual tokens get 0.17-0.88 of their uniform-attention share in all 30 layers. Here on
8 of those prompts (the same first 8): every massive activation at the first token (the property, not a count), the
first token on top in at least 20 layers (6 below the measured 26: the prompts differ at layers 8-10, where a text
token or a visual token takes over), and the visual share below uniform at every layer (the closest measured 0.88).
"""

from __future__ import annotations

import pytest
import torch

from interp.extreme import VisionExtremeReport, scan
from interp.zoo import scenes as world


@pytest.fixture(scope="module")
def report():
    from interp import load_model

    torch.set_num_threads(1)
    vlm = load_model("smollm2-vlm", device="cpu")
    prompts, i = [], 0
    while len(prompts) < 8:
        s = world.scene(i, "heldout")
        i += 1
        if s.questions():
            prompts.append([s.pixels, f" Question: {s.questions()[0]['question']} Answer:"])
    return scan(vlm, prompts, batch_size=8, progress=False)


def test_bos_keeps_the_massive_activations(report: VisionExtremeReport):
    assert report.n_massive > 0
    assert report.massive_kind[:, 0].sum() == report.n_massive  # none at a visual or a text token
    assert all(e[2] == 0 for e in report.massive)
    on_top = int((report.top_kind[:, 0] == report.n_texts).sum())
    assert on_top >= 20, on_top


def test_visual_tokens_take_less_than_uniform_attention(report: VisionExtremeReport):
    ratio = report.mass_layer[:, 1] / report.uniform_mass[1]
    assert (ratio < 1).all(), ratio.tolist()
    assert report.n_visual == 16 * report.n_texts
