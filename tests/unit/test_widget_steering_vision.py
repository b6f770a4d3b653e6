"""``SteeringPlayground`` with an image prompt (random tiny LLaVA): the prompt shows as its token strip with the visual
tokens named ``<img R,C>``; the continuations and log-prob gaps, unsteered and steered, equal those of the model's own
forward given the pixels (a separate path from the widget's connector-output injection)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.errors import InterpError
from interp.models import text_ids
from interp.models.vision import encode
from interp.steering import SteeringVectors
from interp.testing import random_model, random_vlm
from widgets.steering import SteeringPlayground


@pytest.fixture(scope="module")
def vlm():
    return random_vlm("llava-clip")


def _img(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def _vectors(model) -> SteeringVectors:
    g = torch.Generator().manual_seed(0)
    v = torch.randn(1, model.cfg.d_model, generator=g)
    return SteeringVectors(v / v.norm(), [0], "random", "random-vlm")


@torch.no_grad()
def _reference(model, parts, pref: str, disp: str, n: int) -> tuple[float, str]:
    """(gap, greedy continuation) from the model's forward with pixel_values."""
    vin = encode(model, parts)
    ids, kw = vin.on("cpu")
    lp = []
    for ans in (pref, disp):
        a = text_ids(model, ans, prepend_bos=False).reshape(1, -1)
        logits = model(torch.cat([ids, a], 1), **kw).log_softmax(-1)[0]
        p = ids.shape[1]
        lp.append(float(logits[p - 1 : -1].gather(-1, a[0, :, None]).sum()))
    seq, out = ids, []
    for _ in range(n):
        nxt = model(seq, **kw)[0, -1].argmax().view(1, 1)
        out.append(int(nxt))
        seq = torch.cat([seq, nxt], 1)
    return lp[0] - lp[1], model.tokenizer.decode(out)


def test_image_prompt_strip_gaps_and_continuations(vlm):
    img, vec = _img(), _vectors(vlm)
    w = SteeringPlayground(vlm, vec, prompt=[img, "ab"], preferred="c", dispreferred="d", alpha=1.5, max_alpha=3)
    assert w.error.layout.display == "none" and w.prompt.value == "ab"
    assert w.strip.layout.display == "" and w.strip.value.count("&lt;img ") == 16 and "&lt;img 3,3&gt;" in w.strip.value
    r = w.result
    gap, cont = _reference(vlm, [img, "ab"], "c", "d", w.n_tokens.value)
    assert r["gap_plain"] == pytest.approx(gap, abs=1e-4) and r["plain"] == cont
    with vec.steer(vlm, 1.5):
        gap_s, cont_s = _reference(vlm, [img, "ab"], "c", "d", w.n_tokens.value)
    assert r["gap_steered"] == pytest.approx(gap_s, abs=1e-4) and r["steered"] == cont_s
    assert r["gap_steered"] != pytest.approx(r["gap_plain"], abs=1e-4)  # the vector moves the gap
    assert r["prompt"] == "<image>ab" and len(r["sweep"]) == 7
    # the text after the image is editable; the image stays
    w.prompt.value = "abc"
    w.run()
    assert w.error.layout.display == "none" and w.result["prompt"] == "<image>abc"


def test_text_prompt_unchanged_and_text_models_refuse_images(vlm):
    w = SteeringPlayground(vlm, _vectors(vlm), prompt="ab", alpha=1.0)
    assert w.strip.layout.display == "none" and w.result["prompt"] == "ab" and w.result["gap_plain"] is None
    llama = random_model("llama")
    vec = SteeringVectors(torch.ones(1, llama.cfg.d_model) / llama.cfg.d_model ** 0.5, [0], "random", "llama")
    with pytest.raises(InterpError, match="text-only"):
        SteeringPlayground(llama, vec, prompt=[_img(), "ab"])
