"""``scenes.text_prior_contrast``: the text before the image names a colour absent from the picture for the first
object's shape, r times (r from ``repeats``); preferred = the first object's true colour, dispreferred = the text's;
seeded; ``repeats=(0,)`` gives the image alone; bad repeats refused."""

import numpy as np
import pytest

from interp.errors import InterpError
from interp.steering.scenes import text_prior_contrast
from interp.zoo import scenes as world


def test_the_text_names_an_absent_colour_for_the_first_shape():
    out = text_prior_contrast("train", 30)
    assert len(out) == 30
    counts = set()
    for i, e in enumerate(out):
        s = world.scene(i, "train", max_objects=3)
        _, _, colour, shape = s.objects[0]
        text, pixels = e.prompt
        assert np.array_equal(pixels, s.pixels) and e.entity == f"train:{i}"
        wrong = e.dispreferred.strip()
        assert e.preferred == " " + colour and wrong not in {o[2] for o in s.objects}
        r = text.count(".")
        assert text == " ".join([f"{wrong} {shape}."] * r)
        counts.add(r)
    assert counts == {1, 2, 3}  # every repeat count occurs in 30 scenes


def test_seeded_and_control():
    a, b = text_prior_contrast("heldout", 8, start=5), text_prior_contrast("heldout", 8, start=5)
    assert [(e.prompt[0], e.preferred, e.dispreferred) for e in a] == [(e.prompt[0], e.preferred, e.dispreferred) for e in b]
    plain = text_prior_contrast("heldout", 8, start=5, repeats=(0,))
    assert all(len(e.prompt) == 1 and isinstance(e.prompt[0], np.ndarray) for e in plain)
    assert [e.dispreferred for e in plain] == [e.dispreferred for e in a]  # same questions, the text left out
    with pytest.raises(InterpError, match="repeats"):
        text_prior_contrast("train", 2, repeats=(-1,))
