"""The extreme-token scan on image + text prompts (random tiny VLMs): the streaming scan equals its naive twin, visual
positions are named by patch, the first/visual/text split adds up, files round-trip, bad inputs are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.errors import InterpError
from interp.extreme import scan
from interp.extreme.naive_vision import naive_scan_images
from interp.extreme.vision import KINDS, VisionExtremeReport, code_label, encode_prompts, scan_images
from interp.models.vision import encode
from interp.testing import random_vlm

FIELDS = ["sink_score", "gu_share", "value_first", "value_other", "resid_first", "resid_other_max", "resid_other_median",
          "top_abs", "median_abs", "mass", "mass_sq", "uniform_mass", "top_kind", "kind_absmax", "kind_absmax_sq",
          "massive_kind", "kind_prompts"]


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)


PROMPTS = [[_image(0), "what is it?"], ["plain text, no image"], [_image(1)], ["left ", _image(2), " and ", _image(3), " right"],
           "a string prompt"]


@pytest.fixture(scope="module", params=["llava-clip", "gemma3"])
def vlm(request):
    return random_vlm(request.param)


def test_streaming_equals_naive_on_image_prompts(vlm):
    b = naive_scan_images(vlm, PROMPTS)
    for batch_size in (1, 3):  # padding, mixed image counts and length-sorted batches must not move any number
        a = scan(vlm, PROMPTS, batch_size=batch_size, progress=False)
        assert isinstance(a, VisionExtremeReport)
        for f in FIELDS:
            # float32 activations reduced in float64 on both sides: only the summation order differs (~1e-7 relative)
            assert torch.allclose(getattr(a, f), getattr(b, f), rtol=1e-5, atol=1e-6, equal_nan=True), f
        assert a.n_texts == b.n_texts == len(PROMPTS) and a.n_tokens == b.n_tokens and a.n_visual == b.n_visual
    again = scan(vlm, PROMPTS, batch_size=3, progress=False)  # same inputs, same bits
    assert all(torch.equal(getattr(a, f).nan_to_num(-7), getattr(again, f).nan_to_num(-7)) for f in FIELDS)
    assert again.other_sinks == a.other_sinks and again.massive == a.massive


def test_kinds_labels_and_shares(vlm):
    r = scan_images(vlm, PROMPTS, progress=False)
    rows = encode_prompts(vlm, PROMPTS)
    vins = [encode(vlm, p) for p in PROMPTS]
    assert r.n_visual == sum(v.visual.numel() for v in vins) > 0
    for kinds, v in zip(rows.kinds, vins):
        assert kinds[0] == 0 and (kinds[v.visual] == 1).all() and int((kinds == 1).sum()) == v.visual.numel()
    with_text = sum(v.ids.shape[1] - 1 - v.visual.numel() > 0 for v in vins)  # 4 on LLaVA; 5 with Gemma's <boi>/<eoi>
    assert r.kinds == list(KINDS) and r.kind_prompts.tolist() == [5, 3, with_text]
    # the three kinds share all the attention of each query: each row sums to 1, as does the uniform baseline
    assert torch.allclose(r.mass.sum(-1), torch.ones_like(r.mass[..., 0]), atol=1e-5)
    assert float(r.uniform_mass.sum()) == pytest.approx(1.0, abs=1e-6)
    assert (r.top_kind.sum(-1) == len(PROMPTS)).all()
    assert r.mass_se.shape == r.mass_layer.shape and (r.mass_se >= 0).all()
    # every visual id is replaced by its patch code: decoding it gives the patch name the token views use
    for codes, v in zip(rows.codes, vins):
        assert [code_label(int(codes[p])) for p in v.visual] == [v.labels()[int(p)] for p in v.visual]
    assert code_label(-(1 + (1 * 1000 + 2) * 1000 + 3)) == "<img 1:2,3>"


def test_a_planted_massive_activation_at_a_patch_is_named_by_it(vlm, tmp_path):
    prompt = [_image(0), "what is it?"]
    v = encode(vlm, prompt)
    pos, (_, row, col) = int(v.visual[-1]), v.patches[-1].tolist()

    def plant(x, hook):
        x = x.clone()
        x[:, pos, 3] += 5000.0
        return x

    with vlm.hooks(fwd_hooks=[("blocks.0.hook_mlp_out", plant)]):
        r = scan(vlm, [prompt], progress=False)
    assert r.massive and r.massive[0][2] == pos and r.massive[0][5] == f"<img {row},{col}>"
    assert r.massive_kind[:, 1].sum() == r.n_massive and r.massive_kind[:, [0, 2]].sum() == 0
    assert (r.top_kind[:, 1] == 1).all()  # the planted entry is the largest at every layer after block 0
    path = r.save(tmp_path / "v.safetensors")
    back = VisionExtremeReport.load(path)
    for f in FIELDS:
        assert torch.equal(getattr(back, f).nan_to_num(-7), getattr(r, f).nan_to_num(-7)), f
    assert back.massive == r.massive and back.kinds == r.kinds


def test_bad_image_prompts(vlm, random_models):
    with pytest.raises(InterpError, match="text-only"):
        scan(random_models["llama"], [[_image(0), "x"]], progress=False)
    with pytest.raises(InterpError, match="not cut"):
        scan(vlm, [[_image(0), "what is it?"]], max_len=5, progress=False)
    with pytest.raises(InterpError, match="prompt 1 is a int"):
        scan_images(vlm, [[_image(0)], 3], progress=False)
    with pytest.raises(InterpError, match="batch_size"):
        scan_images(vlm, [[_image(0)]], batch_size=0, progress=False)
    with pytest.raises(InterpError, match="parts are text"):
        scan(vlm, [[_image(0), 1.5]], progress=False)
    from interp.extreme.scan import scan as scan_texts  # the text-only scan names the entry point that takes images

    with pytest.raises(InterpError, match=r"an image prompt\): scan it with interp.extreme.scan"):
        scan_texts(vlm, [[_image(0), "x"]], progress=False)
