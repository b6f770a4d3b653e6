"""The patch-grid figure of visual-token lenses (interp.viz.vision): one cell per patch, the image inside the figure as
a PNG data-URI (nothing fetched), every word escaped, verdicts as hit / miss / not judged, a patch's words by layer."""

from __future__ import annotations

import base64
import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from interp.errors import InterpError
from interp.lens.visual import visual_lens
from interp.lens.visual_truth import patch_hits, shown
from interp.testing import random_vlm
from interp.viz.vision import image_uri, patch_figure, patch_rows, patch_table, rate_by_layer
from interp.zoo import scenes as world

EVIL = '<img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def vlm():
    return random_vlm("llava-clip")


@pytest.fixture(scope="module")
def scene():
    return world.scene(0)


@pytest.fixture(scope="module")
def result(vlm, scene):
    return visual_lens(vlm, [scene.pixels], lens="logit", k=3)


def _evil(result):
    """The result with a hostile top-1 word at every layer and patch."""
    words = [[[EVIL, *ws[1:]] for ws in layer] for layer in result.words]
    return dataclasses.replace(result, words=words)


def _decode(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def test_one_cell_per_patch_coloured_by_the_top1_score(result, scene):
    fig = patch_figure(result, scene.pixels, layer=1)
    image, cells = fig.data
    assert image.type == "image" and cells.type == "heatmap"
    z = np.asarray(cells.z, dtype=float)
    assert z.shape == tuple(result.grid) == (world.GRID, world.GRID)
    # every patch is one cell whose colour is the top-1 score of its visual token at layer 1
    row = result.layers.index(1)
    for v, (_, r, c) in enumerate(result.patches.tolist()):
        assert z[r, c] == pytest.approx(float(result.scores[row, v, 0]))
        assert f"patch (row {r}, col {c})" in cells.customdata[r][c]
    # cell centres sit on the 12-pixel cells of the 48-pixel scene; grid lines between them
    assert list(cells.x) == list(cells.y) == [6.0, 18.0, 30.0, 42.0]
    assert len(fig.layout.shapes) == 2 * (world.GRID - 1)


def test_the_image_is_a_data_uri_and_nothing_is_fetched(result, scene):
    fig = patch_figure(result, scene.pixels)
    assert np.array_equal(_decode(fig.data[0].source), scene.pixels)  # lossless PNG of the very pixels
    text = fig.to_json()
    assert "http://" not in text and "https://" not in text
    assert image_uri(scene.pixels) == fig.data[0].source


def test_hover_and_cell_words_are_escaped(result, scene):
    fig = patch_figure(_evil(result), scene.pixels, shows=[EVIL] * result.visual.numel(), title=EVIL)
    cells = fig.data[1]
    flat = [x for row in cells.customdata for x in row] + [x for row in cells.text for x in row] + [fig.layout.title.text]
    assert all("<img" not in x and "onerror=\"" not in x for x in flat)
    assert all("&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in x for x in flat)
    # the hover lists the top-k words with their scores, rank by rank
    assert "1. &lt;img" in cells.customdata[0][0] and "<b>top-3 (probability)</b>" in cells.customdata[0][0]


def test_verdict_colours_hit_miss_and_not_judged(result, scene):
    hits = patch_hits(result, [scene])
    hits[:, 0] = True  # plant one hit at every layer
    keep = shown(result, [scene])
    fig = patch_figure(result, scene.pixels, verdict=hits, keep=keep, layer=0)
    z = np.asarray(fig.data[1].z, dtype=float)
    for v, (_, r, c) in enumerate(result.patches.tolist()):
        if not keep[v]:
            assert np.isnan(z[r, c]) and "not judged" in fig.data[1].customdata[r][c]
        else:
            assert z[r, c] == float(hits[0, v])
    assert fig.data[1].colorbar.ticktext == ("miss", "hit")
    # unjudged cells are None, not NaN: a widget's messages are strict JSON (NaN broke the figure's update)
    json.dumps([list(row) for row in fig.data[1].z], allow_nan=False)


def test_values_override_and_shape_errors(result, scene):
    vals = torch.arange(result.visual.numel(), dtype=torch.float)
    z = np.asarray(patch_figure(result, scene.pixels, values=vals).data[1].z, dtype=float)
    assert z[0, 0] == 0 and z[3, 3] == 15
    with pytest.raises(InterpError, match=r"values must be \[vis\] or \[layer, vis\]"):
        patch_figure(result, scene.pixels, values=torch.zeros(5))
    with pytest.raises(InterpError, match="layer 7 was not read"):
        patch_figure(result, scene.pixels, layer=7)
    with pytest.raises(InterpError, match="image 1 is not in this result"):
        patch_figure(result, scene.pixels, image_index=1)


def test_a_patch_by_layer_table(result):
    rows = patch_rows(_evil(result), 1, 2, mark=lambda w: w == EVIL)
    assert [r[0] for r in rows] == [str(x) for x in result.layers]
    assert all(len(r) == 1 + 3 and r[1].startswith(EVIL + " ✓") for r in rows)
    fig = patch_table(_evil(result), 1, 2)
    cells = fig.data[0].cells.values
    assert len(cells[0]) == len(result.layers) and all(x.startswith("&lt;img") for x in cells[1])
    with pytest.raises(InterpError, match="no visual token shows patch"):
        patch_rows(result, 9, 9)


def test_rate_by_layer_lines():
    fig = rate_by_layer({"logit": ([0, 1], [0.1, 0.2], [0.01, 0.02]), EVIL: ([0, 1], [0.3, 0.4], [0.0, 0.0])}, floor=0.05)
    assert [t.name for t in fig.data] == ["logit", "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;"]
    assert list(fig.data[0].y) == [0.1, 0.2] and fig.layout.shapes[0].y0 == 0.05
