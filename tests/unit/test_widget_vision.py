"""``VisualTokenExplorer`` in Python (the browser tier draws it in JupyterLab): lens, layer and colour controls, a click
on a patch shows its words at every layer, export, and the errors a text-only model or a prompt without an image get."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

import widgets
from interp.errors import InterpError
from interp.lens.visual_truth import names_attribute
from interp.testing import random_model, random_vlm
from interp.zoo import scenes as world
from widgets.vision import VisualTokenExplorer


@pytest.fixture(scope="module")
def vlm():
    return random_vlm("llava-clip")


def test_explorer_draws_follows_controls_and_shows_a_clicked_patch(vlm, tmp_path):
    s = world.scene(0)
    e = VisualTokenExplorer(vlm, s)
    assert widgets.VisualTokenExplorer is VisualTokenExplorer
    assert e.error.value == "" and e.colour.value == "truth" and e.lens.options == ("logit", "embedding")
    z0 = np.asarray(e.fig.data[1].z, dtype=float)
    assert z0.shape == (world.GRID, world.GRID)
    # empty cells are not judged (no colour), object cells are hit (1) or miss (0)
    for r, c, colour, _ in s.patch_truth():
        assert np.isnan(z0[r, c]) == (colour is None)
    assert "of the object patches" in e.note.value
    # a click at the centre of cell (row 1, col 2) selects that patch: its words at every layer, truth named
    e._clicked(e.fig.data[1], SimpleNamespace(xs=[30.0], ys=[18.0]), None)
    assert e.selected == (1, 2) and e.error.value == ""
    colour, shape = s.cells[1][2]
    assert f"shows {colour} {shape}" in e.detail.value
    assert e.detail.value.count("<tr>") == 1 + vlm.cfg.n_layers + 1  # header + one row per layer
    # the layer slider redraws without recomputing; the lens dropdown computes the other lens once
    e.layer.value = 0
    assert e.fig.layout.title.text.startswith("logit lens at layer 0") and list(e.results) == ["logit"]
    e.lens.value = "embedding"
    assert list(e.results) == ["logit", "embedding"] and e.fig.layout.title.text.startswith("embedding lens at layer 0")
    assert "embedding lens, patch (row 1, col 2)" in e.detail.value  # the selection follows the lens
    e.colour.value = "score"
    assert not np.isnan(np.asarray(e.fig.data[1].z, dtype=float)).any() and "top-1 word's score" in e.note.value
    out = e.export(tmp_path / "v.html")
    html = out.read_text()
    assert "Visual tokens: embedding lens" in html and "data:image/png;base64," in html
    assert "Top words of patch (row 1, col 2)" in html


def test_select_marks_words_that_name_the_patch(vlm):
    s = world.scene(0)
    e = VisualTokenExplorer(vlm, [s.pixels, " a scene"], truth=s, k=3)
    r, c = next((r, c) for r, c, col, _ in s.patch_truth() if col is not None)
    colour, shape = s.cells[r][c]
    v = next(i for i, p in enumerate(e.result.patches.tolist()) if p[1:] == [r, c])
    # plant " <Shape>" (a synonym, after strip + lower) as the second word of patch v at every layer
    words = [[list(ws) for ws in layer] for layer in e.result.words]
    for layer in words:
        layer[v][1] = " " + shape.capitalize()
    e.results["logit"] = dataclasses.replace(e.result, words=words)
    html = e.select(r, c)
    assert html.count("✓") == len(e.result.layers) + sum(names_attribute(w, (colour, shape)) for L in words for w in L[v][:1] + L[v][2:])
    assert f"{shape.capitalize()} ✓" in html


def test_follow_hover_and_two_images(vlm):
    a, b = world.scene(0), world.scene(1)
    e = VisualTokenExplorer(vlm, [a, " and ", b])
    assert e.truth == [a, b] and e.image.layout.display == "" and e.image.options == (0, 1)
    hover = SimpleNamespace(xs=[42.0], ys=[42.0])
    e._hovered(e.fig.data[1], hover, None)
    assert e.selected is None  # "follow hover" is off by default
    e.hover.value = True
    e._hovered(e.fig.data[1], hover, None)
    assert e.selected == (3, 3) and "patch (row 3, col 3) of image 0" in e.detail.value
    e.image.value = 1  # the second image: its pixels, its truth, the same patch selected
    assert np.array_equal(_png(e.fig.data[0].source), b.pixels)
    cell = b.cells[3][3]
    assert "of image 1" in e.detail.value and (f"shows {' '.join(cell)}" if cell else ", empty") in e.detail.value


def _png(uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def test_bad_inputs(vlm):
    with pytest.raises(InterpError, match="needs a vision-language model"):
        VisualTokenExplorer(random_model("llama"), world.scene(0))
    with pytest.raises(InterpError, match="the prompt holds no image"):
        VisualTokenExplorer(vlm, ["just text"])
    with pytest.raises(InterpError, match="one scene per image"):
        VisualTokenExplorer(vlm, world.scene(0).pixels, truth=[world.scene(0), world.scene(1)])
