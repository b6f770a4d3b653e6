"""The SmolLM2 VLM (frozen SmolLM2-135M + a tower and connector trained here, data/vlm/smollm2-vlm/README.md) loads offline
through the bridge's LLaVA adapter, reads its images, and its visual tokens behave under the lenses as
bench/results/vlm_latentlens.md measured."""

from __future__ import annotations

import pytest
import torch

from interp.models.vision import encode
from interp.zoo import scenes as world
from interp.zoo.vlm_train import caption_ids


@pytest.fixture(scope="module")
def vlm():
    from interp import load_model

    return load_model("smollm2-vlm", device="cpu")


def test_loads_as_llava_and_matches_hugging_face(vlm):
    from transformers import LlavaForConditionalGeneration

    assert isinstance(vlm.original_model, LlavaForConditionalGeneration)
    assert vlm.cfg.n_layers == 30 and vlm.cfg.d_model == 576
    s = world.scene(0, "heldout")
    vin = encode(vlm, [s.pixels, " red"])
    assert vin.visual.numel() == 16 and (vin.ids[0, vin.visual] == 16).all()
    assert vlm.tokenizer.convert_ids_to_tokens(16) == "<image>"
    with torch.no_grad():
        ref = vlm.original_model(input_ids=vin.ids, pixel_values=vin.pixel_values).logits
        out = vlm(vin.ids, pixel_values=vin.pixel_values)
    assert torch.equal(ref, out)


def test_captions_come_from_the_image(vlm):
    """Teacher-forced caption words (colours and shapes) of 40 held-out sparse scenes through the bridge: the parts'
    README reports 0.966 on 200 scenes (0.026 with the image zeroed); >= 0.93 allows for the smaller sample (SE ~0.02)."""
    tok = vlm.tokenizer
    attr = {tok.encode(" " + w, add_special_tokens=False)[0] for w in (*world.COLOURS, *world.SHAPES)}
    hit = tot = 0
    for s in world.scenes(40, "heldout", max_objects=3):
        ids, start = caption_ids(tok, s, vlm.original_model.config.text_config.bos_token_id, 16)
        vin = encode(vlm, [s.pixels])
        x = torch.tensor([ids])
        with torch.no_grad():
            logits = vlm(x, pixel_values=vin.pixel_values)[0]
        for t in range(start, len(ids)):
            if ids[t] in attr:
                tot += 1
                hit += int(logits[t - 1].argmax()) == ids[t]
    assert tot > 100 and hit / tot >= 0.93, (hit, tot)


def test_lens_ordering_on_a_sample(vlm):
    """bench/results/vlm_latentlens.md (30 held-out scenes, 237 object patches, the bundled index) measured, over all 31
    layers, top-5 rates LatentLens 0.91 > embedding lens 0.07 > logit lens 0.04 (the paper's ordering), and only
    LatentLens' words follow the patch: at its best layer 1.00 against 0.23 when judged against another object patch.
    On this 8-scene sample the test checks the same ordering and a gap of at least 0.4 (measured gaps: LatentLens 0.77,
    the others under 0.1)."""
    from interp.lens.bundled import default_index
    from interp.lens.visual import visual_lens
    from interp.lens.visual_truth import patch_hits, rate, shown

    index = default_index(vlm)
    assert index is not None and len(index) > 1000
    held = world.scenes(8, "heldout")
    overall, gap = {}, {}
    for lens in ("latent", "embedding", "logit"):
        hits, shuffled, keep = [], [], []
        for i, s in enumerate(held):
            r = visual_lens(vlm, [s.pixels], lens=lens, index=index if lens == "latent" else None, k=5)
            hits.append(patch_hits(r, [s]))
            shuffled.append(patch_hits(r, [s], shuffle_seed=i))
            keep.append(shown(r, [s]))
        h, hs, k = torch.cat(hits, 1), torch.cat(shuffled, 1), torch.cat(keep)
        overall[lens] = rate(h, k)[0]
        gap[lens] = max(rate(h[j], k)[0] - rate(hs[j], k)[0] for j in range(h.shape[0]))
    assert overall["latent"] > overall["embedding"] > overall["logit"], overall
    assert gap["latent"] >= 0.4 > max(gap["embedding"], gap["logit"]), gap


def test_attribution_finds_the_deciding_patch(vlm):
    """Issue 34's floor on the SmolLM2 VLM: a gradient method and IG put the deciding patch in the top 3 of the 16 visual
    tokens on >= 80% of planted cuts. bench/results/vlm_attribution.md (106 cuts of 26 held-out scenes): gradient norm
    0.991, IG (signed sum) 0.925, random 0.170; on the 20 cuts of the first 5 scenes used here 20/20 and 19/20. IG's
    completeness error stays under 1% (the bench's worst: 0.0099)."""
    import warnings

    from interp.attribution import attribute

    hits = {"gradient_norm": 0, "integrated_gradients": 0}
    n = 0
    for i in range(5):
        s = world.scene(i, "heldout", max_objects=3)
        for text, word, (r, c) in s.caption_cuts():
            n += 1
            prompt = [s.pixels, text] if text else [s.pixels]
            target = vlm.tokenizer.encode(word, add_special_tokens=False)[:1]
            for method in hits:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    a = attribute(vlm, prompt, target=target, method=method)
                vis = a.info["visual"]
                hits[method] += vis["patches"].index([0, r, c]) in a.row(-1)[vis["positions"]].topk(3).indices.tolist()
                if a.completeness_error is not None:
                    assert float(a.completeness_error.max()) < 0.01
    assert n >= 20 and all(h >= 0.8 * n for h in hits.values()), (hits, n)
