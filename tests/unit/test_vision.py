"""Images into the workbench: the scene world's truth, prompt encoding and visual-token bookkeeping on random tiny VLMs
of each LLaVA tower family the bridge supports (CLIP, SigLIP), and the visual lenses' shapes and arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp.errors import InterpError
from interp.lens.visual import visual_lens
from interp.models.vision import encode
from interp.testing import VLM_FAMILIES, random_model, random_vlm
from interp.zoo import scenes as world


@pytest.fixture(scope="module")
def vlms():
    return {f: random_vlm(f) for f in VLM_FAMILIES}


def _img(seed=0, h=40, w=50):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_scenes_are_deterministic_and_split():
    a, b = world.scene(5), world.scene(5)
    assert np.array_equal(a.pixels, b.pixels) and a.cells == b.cells
    assert a.pixels.shape == (world.SIZE, world.SIZE, 3) and a.pixels.dtype == np.uint8
    held = world.scene(5, "heldout")
    assert not np.array_equal(a.pixels, held.pixels)
    # every object's cell differs from the background; every empty cell is background (+- noise)
    for r, c, colour, _ in a.patch_truth():
        cell = a.pixels[r * world.CELL:(r + 1) * world.CELL, c * world.CELL:(c + 1) * world.CELL].astype(int)
        spread = np.abs(cell - np.array([30, 30, 34])).max()
        assert (spread > 60) == (colour is not None)


def test_captions_and_questions_follow_the_cells():
    for i in range(20):
        s = world.scene(i)
        words = s.caption().rstrip(".").split(", ")
        assert words == ([f"{c} {h}" for _, _, c, h in s.objects] or ["nothing"])
        for q in s.questions():
            r, c = q["patch"]
            colour, shape = s.cells[r][c]
            assert q["question"] == f"what colour is the {shape}?" and q["answer"] == colour and q["wrong"] != colour
            assert sum(o[3] == shape for o in s.objects) == 1
        cuts = s.caption_cuts()
        assert len(cuts) == 2 * len(s.objects)
        for (text, word, (r, c)), nxt in zip(cuts, cuts[1:] + [(" " + s.caption()[:-1], None, None)]):
            assert nxt[0] in (text + word, text + word + ",") and word.strip() in s.cells[r][c]  # the patch shows it


@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_visual_positions_and_patches(vlms, family):
    m = vlms[family]
    vin = encode(m, ["ab ", _img(), " cd"])
    cfg = m.original_model.config
    gemma = family == "gemma3"  # its tower's patches are pooled to mm_tokens_per_image tokens, framed by <boi> <eoi>
    side = int(cfg.mm_tokens_per_image ** 0.5) if gemma else cfg.vision_config.image_size // cfg.vision_config.patch_size
    assert vin.grid == (side, side) and vin.visual.numel() == side * side
    assert (vin.ids[0, vin.visual] == cfg.image_token_id).all()
    # the slots are one contiguous run after the text "ab " and BOS (and Gemma's <boi>)
    n_text = 1 + len(m.tokenizer.encode("ab ", add_special_tokens=False)) + int(gemma)
    if gemma:
        assert vin.ids[0, n_text - 1] == cfg.boi_token_index and vin.ids[0, n_text + side * side] == cfg.eoi_token_index
    assert vin.visual.tolist() == list(range(n_text, n_text + side * side))
    assert vin.patches.tolist() == [[0, j // side, j % side] for j in range(side * side)]
    assert vin.pixel_values.shape == (1, 3, cfg.vision_config.image_size, cfg.vision_config.image_size)
    # the bridge runs the image through the Hugging Face model's own forward
    with torch.no_grad():
        ref = m.original_model(input_ids=vin.ids, pixel_values=vin.pixel_values).logits
        out = m(vin.ids, pixel_values=vin.pixel_values)
    assert torch.allclose(ref, out, atol=1e-5) if gemma else torch.equal(ref, out)


@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_the_visual_token_at_layer_zero_is_the_connector_output(vlms, family):
    """Which patch each visual token shows is right: the layer-0 state at the token of patch j is the projector's
    output for the tower's feature of patch j (a shuffled mapping would fail)."""
    m = vlms[family]
    img = _img(1)
    vin = encode(m, [img])
    hf = m.original_model
    with torch.no_grad():
        feats = hf.model.get_image_features(pixel_values=vin.pixel_values).pooler_output[0]  # [n_feat, d]
        r = visual_lens(m, [img], lens="embedding", layer=0, k=3)
        _, cache = m.run_with_cache(vin.ids, pixel_values=vin.pixel_values, names_filter=["blocks.0.hook_resid_pre"])
    states = cache["blocks.0.hook_resid_pre"][0, vin.visual]
    offset = feats.shape[0] - vin.visual.numel()  # a CLS feature kept by "full" comes first
    assert torch.allclose(states, feats[offset:], atol=1e-6)
    emb = torch.nn.functional.normalize(hf.get_input_embeddings().weight, dim=-1)
    want = (torch.nn.functional.normalize(states, dim=-1) @ emb.T).topk(3, dim=-1)
    assert torch.equal(r.ids[0], want.indices) and torch.allclose(r.scores[0], want.values, atol=1e-6)


def test_logit_lens_on_visual_tokens_ends_at_the_model(vlms):
    m = vlms["llava-clip"]
    img = _img(2)
    vin = encode(m, [img])
    r = visual_lens(m, [img], lens="logit", k=4)
    assert r.layers == list(range(m.cfg.n_layers + 1)) and r.scores.shape == (m.cfg.n_layers + 1, vin.visual.numel(), 4)
    with torch.no_grad():
        probs = m(vin.ids, pixel_values=vin.pixel_values)[0, vin.visual].softmax(-1)
    top = probs.topk(4, dim=-1)
    assert torch.equal(r.ids[-1], top.indices) and torch.allclose(r.scores[-1], top.values, atol=1e-5)
    assert len(r.patch_words(r.layers[-1], 1, 2)) == 4


def test_result_round_trips(vlms, tmp_path):
    r = visual_lens(vlms["llava-clip"], [_img(3)], lens="embedding", layer=[0, 2])
    r.save(tmp_path / "r.safetensors")
    back = type(r).load(tmp_path / "r.safetensors")
    assert back.words == r.words and torch.equal(back.patches, r.patches) and back.layers == [0, 2]


def test_images_need_a_vlm_and_lenses_need_images(vlms):
    text_only = random_model("llama")
    with pytest.raises(InterpError, match="text-only model"):
        encode(text_only, ["hi", _img()])
    with pytest.raises(InterpError, match="not a vision-language model"):
        visual_lens(text_only, ["hi"], lens="logit")
    with pytest.raises(InterpError, match="holds no image"):
        visual_lens(vlms["llava-clip"], ["hi"], lens="logit")
    with pytest.raises(InterpError, match="needs index"):
        visual_lens(vlms["llava-clip"], [_img()], lens="latent")
    with pytest.raises(InterpError, match="unknown lens"):
        visual_lens(vlms["llava-clip"], [_img()], lens="tuned-ish")


def test_the_sink_view_takes_an_image_prompt(vlms):
    from interp.extreme.prompt import inspect_prompt

    m = vlms["llava-clip"]
    v = inspect_prompt(m, ["ab ", _img(4)])
    vin = encode(m, ["ab ", _img(4)])
    assert len(v.tokens) == vin.ids.shape[1] and v.patterns.shape[-1] == vin.ids.shape[1]
    assert [v.tokens[p] for p in vin.visual[:5].tolist()] == ["<img 0,0>", "<img 0,1>", "<img 0,2>", "<img 0,3>", "<img 1,0>"]
    assert torch.allclose(v.patterns.sum(-1), torch.ones(()), atol=1e-5)


def test_logit_lens_takes_an_image_prompt(vlms):
    from interp.lens.logit import logit_lens

    m = vlms["llava-clip"]
    img = _img(5)
    r = logit_lens(m, ["ab ", img, " cd"], top_k=3)
    vin = encode(m, ["ab ", img, " cd"])
    assert len(r.tokens) == vin.ids.shape[1] and r.tokens[vin.visual[0]] == "<img 0,0>"
    with torch.no_grad():
        probs = m(vin.ids, pixel_values=vin.pixel_values)[0].softmax(-1)
    assert torch.allclose(r.top_probs[-1], probs.topk(3, dim=-1).values, atol=1e-5)


def test_loading_a_vlm_installs_nothing(monkeypatch):
    """TransformerLens 4.3 runs ``pip install torchvision`` when a multimodal model's AutoProcessor fails to load; on a
    CPU machine that swapped torch for a CUDA build mid-run. load_model declines it: no subprocess is started."""
    import subprocess

    from transformer_lens.model_bridge.sources.transformers import helpers

    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: calls.append(a))
    before = helpers._ensure_torchvision
    m = random_vlm("gemma3")  # its AutoProcessor fails to load here, which is what triggers the install
    assert calls == [] and helpers._ensure_torchvision is before
    assert m.original_model is not None
