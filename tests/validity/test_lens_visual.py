"""Visual lenses recover planted truth on the zoo VLM: the words they read off a visual token name what its patch shows.

``scenes-vlm`` (data/models/scenes-vlm/MODEL_CARD.md) reads 16 visual tokens per 48x48 scene, one per grid cell, and the
scene generator knows every cell's colour and shape. Measured on the 30 held-out scenes below (about 250 object
patches): the logit lens and the embedding lens name an attribute of the patch in their top 5 on 0.88-0.89 of object
patches at layers 3 and 4 and on none at layers 0-1; five random vocabulary words do on 0.03. The thresholds (0.70 at
the best layer, under 0.10 at layer 0, a random floor under 0.10) sit more than 8 binomial standard errors (0.02) from
the measured values.
"""

from __future__ import annotations

import pytest
import torch

from interp import load_model
from interp.lens.visual import visual_lens
from interp.lens.visual_truth import patch_hits, random_word_rate, rate, shown
from interp.zoo import scenes as world


@pytest.fixture(scope="module")
def vlm():
    return load_model("scenes-vlm", device="cpu")


@pytest.fixture(scope="module")
def held():
    return world.scenes(30, "heldout")


@pytest.mark.parametrize("lens", ["logit", "embedding"])
def test_lens_names_the_patch_attribute_in_late_layers(vlm, held, lens):
    hits, keep = [], []
    for s in held:
        r = visual_lens(vlm, [s.pixels], lens=lens, k=5)
        hits.append(patch_hits(r, [s]))
        keep.append(shown(r, [s]))
    h, k = torch.cat(hits, 1), torch.cat(keep)
    assert k.sum() >= 200  # enough object patches for the rates to mean something
    per_layer = [rate(h[i], k)[0] for i in range(h.shape[0])]
    assert max(per_layer) >= 0.70, per_layer
    assert per_layer[0] < 0.10, per_layer  # the connector's output is not itself a word embedding here
    vocab = vlm.tokenizer.convert_ids_to_tokens(list(range(vlm.cfg.d_vocab)))
    floor, _ = random_word_rate([vlm.tokenizer.convert_tokens_to_string([t]) for t in vocab], held)
    assert floor < 0.10 < max(per_layer) - floor


def test_the_caption_is_read_from_the_image(vlm):
    """The model's own answer after the image is the first object's colour (teacher-forced captions: card 0.96)."""
    right = 0
    scenes = world.scenes(40, "heldout", max_objects=1)
    for s in scenes:
        from interp.models.vision import encode

        vin = encode(vlm, [s.pixels])
        with torch.no_grad():
            logits = vlm(vin.ids, pixel_values=vin.pixel_values)[0, -1]
        word = vlm.tokenizer.decode([int(logits.argmax())]).strip()
        right += word == s.objects[0][2]
    assert right >= 32, right  # 80%; chance is 1/6
