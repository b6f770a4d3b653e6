"""Bad image input gets one clear InterpError naming the problem (and what to do), never a traceback from PIL or torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from interp.errors import InterpError
from interp.models import vision
from interp.models.vision import encode
from interp.testing import random_model, random_vlm


@pytest.fixture(scope="module")
def vlm():
    return random_vlm("llava-clip")


def _rgb(h=32, w=32, c=3, seed=0):
    return (np.random.default_rng(seed).random((h, w, c)) * 255).astype(np.uint8)


def test_text_only_model_given_an_image():
    with pytest.raises(InterpError, match="text-only model and cannot take images"):
        encode(random_model("llama"), ["a ", _rgb()])


def test_a_file_that_is_not_an_image(vlm, tmp_path):
    bad = tmp_path / "scene.png"
    bad.write_text("not a picture", encoding="utf-8")
    with pytest.raises(InterpError, match="not an image file"):
        encode(vlm, [bad])
    with pytest.raises(InterpError, match="no image file"):
        encode(vlm, [tmp_path / "missing.png"])


def test_a_huge_image(vlm, tmp_path, monkeypatch):
    monkeypatch.setattr(vision, "MAX_PIXELS", 1000)
    p = tmp_path / "big.png"
    Image.fromarray(_rgb(40, 40)).save(p)
    for part in (p, Image.open(p), _rgb(40, 40)):
        with pytest.raises(InterpError, match="over the 1,000 accepted"):
            encode(vlm, [part])


def test_grey_and_opaque_rgba_are_converted_transparent_rgba_refused(vlm):
    grey = _rgb()[..., 0]
    a = encode(vlm, [grey])
    b = encode(vlm, [np.repeat(grey[..., None], 3, axis=-1)])
    assert a.pixel_values.equal(b.pixel_values)
    opaque = np.concatenate([_rgb(), np.full((32, 32, 1), 255, np.uint8)], axis=-1)
    assert encode(vlm, [opaque]).pixel_values.equal(encode(vlm, [_rgb()]).pixel_values)
    clear = opaque.copy()
    clear[0, 0, 3] = 0
    with pytest.raises(InterpError, match="transparency"):
        encode(vlm, [clear])
    with pytest.raises(InterpError, match="transparency"):
        encode(vlm, [Image.fromarray(clear, "RGBA")])


@pytest.mark.parametrize("arr, why", [
    (np.zeros((4, 4, 2), np.uint8), "must be"),
    (np.zeros((4,), np.uint8), "must be"),
    (np.full((4, 4, 3), 2.0), "float image"),
    (np.full((4, 4, 3), np.nan), "float image"),
    (np.full((4, 4, 3), 300, np.int32), "0..255"),
])
def test_malformed_arrays(vlm, arr, why):
    with pytest.raises(InterpError, match=why):
        encode(vlm, [arr])


def test_image_slots_and_parts(vlm):
    with pytest.raises(InterpError, match="image marker"):
        encode(vlm, ["look: <image>", _rgb()])
    with pytest.raises(InterpError, match="is a int"):
        encode(vlm, [_rgb(), 3])
    with pytest.raises(InterpError, match="non-empty list"):
        encode(vlm, [])
    with pytest.raises(InterpError, match="not valid text"):
        encode(vlm, [_rgb(), "mia \ud800"])
    # more images than the context has room for
    n_ctx = vlm.cfg.n_ctx
    per = (32 // 8) ** 2
    with pytest.raises(InterpError, match="longer than the model's context"):
        encode(vlm, [_rgb()] * (n_ctx // per + 1))


def test_a_path_given_as_a_plain_string_is_text(vlm, tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(_rgb()).save(p)
    assert encode(vlm, [str(p)]).pixel_values is None
    assert encode(vlm, [Path(p)]).pixel_values is not None
