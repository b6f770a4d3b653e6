"""``AttributionExplorer`` with an image prompt (random tiny LLaVA): the token strip names the visual tokens
``<img R,C>``, the patch heatmap beside it holds each patch's score, the text box edits only the text after the image,
several images get an image choice, export writes the heatmap, and a text-only model refuses images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.errors import InterpError
from interp.testing import random_model, random_vlm
from widgets.attribution import AttributionExplorer


@pytest.fixture(scope="module")
def vlm():
    return random_vlm("llava-clip")


def _img(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def _z(fig) -> np.ndarray:
    heat = next(t for t in fig.data if t.type == "heatmap")
    return np.array([[np.nan if v is None else v for v in row] for row in heat.z], dtype=float)


def test_image_prompt_shows_the_patch_heatmap_beside_the_token_strip(vlm, tmp_path):
    img = _img()
    e = AttributionExplorer(vlm, [img, "ab"], method="gradient_norm", truth=(1, 2))
    assert e.error.value == "" and e.prompt.value == "ab" and e.prompt_value()[0] is img
    r = e.result
    assert "<img 0,0>" in r.source_tokens and e.image.layout.display == "none"
    strip = e.children[3]  # header, controls, info, then the token strip and the heatmap side by side
    assert e.tokens_fig in strip.children and e.patch_fig in strip.children
    assert [t.type for t in e.patch_fig.data] == ["image", "heatmap"]
    # the heatmap cells are the result's visual-token scores laid out by patch
    assert np.allclose(_z(e.patch_fig), r.patch_scores(-1)[0].numpy(), equal_nan=True)
    assert any(s.type == "rect" for s in e.patch_fig.layout.shapes)  # the truth patch is outlined
    # editing the text after the image re-attributes with the same image
    e.prompt.value = "abc"
    e.run()
    assert e.error.value == "" and e.result.source_tokens[-1] == "c" and e.result is not r
    assert np.allclose(_z(e.patch_fig), e.result.patch_scores(-1)[0].numpy(), equal_nan=True)
    html = e.export(tmp_path / "a.html").read_text()
    assert "data:image/png;base64," in html and "Each patch of the image coloured by its visual token" in html


def test_image_only_prompt_and_two_images(vlm):
    e = AttributionExplorer(vlm, [_img(0)], method="input_x_gradient")
    assert e.prompt.value == "" and e.prompt_value() == e.fixed and e.error.value == ""
    e2 = AttributionExplorer(vlm, ["ab", _img(1), "c", _img(2), "d"], method="gradient_norm")
    assert e2.image.layout.display == "" and e2.image.options == (0, 1) and e2.prompt.value == "d"
    first = _z(e2.patch_fig)
    e2.image.value = 1
    grids = e2.result.patch_scores(-1)
    assert np.allclose(_z(e2.patch_fig), grids[1].numpy(), equal_nan=True)
    assert not np.allclose(first, _z(e2.patch_fig), equal_nan=True)
    assert not torch.equal(grids[0], grids[1])


def test_text_prompt_keeps_the_plain_view_and_text_models_refuse_images(vlm):
    e = AttributionExplorer(vlm, "abc", method="gradient_norm")
    assert e.images == [] and e.children[3].children == (e.tokens_fig,) and len(e.patch_fig.data) == 0  # (in its scroll box)
    with pytest.raises(InterpError, match="text-only"):
        AttributionExplorer(random_model("llama"), [_img(), "ab"], method="gradient_norm", run=False)
    with pytest.raises(InterpError, match="after the last image must be text"):
        AttributionExplorer(vlm, [_img(), 3], run=False)
