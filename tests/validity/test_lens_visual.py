"""Visual lenses recover planted truth on the zoo VLM: the words they read off a visual token name what its patch shows.

``scenes-vlm`` (data/models/scenes-vlm/MODEL_CARD.md) reads 16 visual tokens per 48x48 scene, one per grid cell, and the
scene generator knows every cell's colour and shape. Measured on the 30 held-out scenes below (237 object patches): the
logit lens and the embedding lens name an attribute of the patch in their top 5 on 0.88-0.89 of object patches at layers
3 and 4 and on none at layers 0-1; five random vocabulary words do on 0.03. Most of that is not specific to the patch:
judged against *another* object patch of the same image (the shuffled control) the same words score 0.76-0.80, because
the late visual tokens read as colour and shape words of the scene in general. The patch-specific part is the gap: top-5
0.09 (logit, layer 4) and 0.12 (embedding, layer 3), top-1 0.06-0.08, about 3-4 standard errors of a paired difference on
237 patches (0.03). Thresholds: top-5 rate >= 0.70 (6 SE below), a gap >= 0.04 for top-5 and > 0 for top-1 at the
layer with the largest top-5 gap (half the measured gap: retraining the model moves it), layer 0 under 0.10.
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
    hits, shuffled, hits1, shuffled1, keep = [], [], [], [], []
    for i, s in enumerate(held):
        r = visual_lens(vlm, [s.pixels], lens=lens, k=5)
        hits.append(patch_hits(r, [s]))
        shuffled.append(patch_hits(r, [s], shuffle_seed=i))
        hits1.append(patch_hits(r, [s], k=1))
        shuffled1.append(patch_hits(r, [s], k=1, shuffle_seed=i))
        keep.append(shown(r, [s]))
    h, hs, h1, hs1 = (torch.cat(x, 1) for x in (hits, shuffled, hits1, shuffled1))
    k = torch.cat(keep)
    assert k.sum() >= 200  # enough object patches for the rates to mean something
    per_layer = [rate(h[i], k)[0] for i in range(h.shape[0])]
    assert max(per_layer) >= 0.70, per_layer
    assert per_layer[0] < 0.10, per_layer  # the connector's output is not itself a word embedding here
    gaps = [per_layer[i] - rate(hs[i], k)[0] for i in range(h.shape[0])]
    best = max(range(len(gaps)), key=gaps.__getitem__)
    assert gaps[best] >= 0.04, gaps  # the words follow the patch, not just the scene
    assert rate(h1[best], k)[0] > rate(hs1[best], k)[0], (best, gaps)
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
