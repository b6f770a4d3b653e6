"""Images into the workbench: the scene world's truth, prompt encoding and visual-token bookkeeping on random tiny VLMs
of each VLM family the bridge supports here (LLaVA with CLIP and SigLIP towers, Gemma 3, Idefics3), and the visual
lenses' shapes and arithmetic."""

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
    gemma, idefics = family == "gemma3", family == "idefics3"
    per_patch = cfg.vision_config.image_size // cfg.vision_config.patch_size
    # Gemma pools the tower's patches to mm_tokens_per_image tokens; Idefics3 folds scale x scale patches into one
    side = int(cfg.mm_tokens_per_image ** 0.5) if gemma else per_patch // cfg.scale_factor if idefics else per_patch
    assert vin.grid == (side, side) and vin.visual.numel() == side * side
    assert (vin.ids[0, vin.visual] == cfg.image_token_id).all()
    # the slots are one contiguous run after BOS and the text "ab " (and Gemma's <boi>, Idefics3's two frame tokens)
    frame = [cfg.boi_token_index] if gemma else [m.tokenizer.convert_tokens_to_ids(t) for t in (
        "<fake_token_around_image>", "<global-img>")] if idefics else []
    n_text = 1 + len(m.tokenizer.encode("ab ", add_special_tokens=False)) + len(frame)
    assert vin.ids[0, n_text - len(frame):n_text].tolist() == frame
    if gemma:
        assert vin.ids[0, n_text + side * side] == cfg.eoi_token_index
    if idefics:
        assert vin.ids[0, n_text + side * side] == frame[0]
    assert vin.visual.tolist() == list(range(n_text, n_text + side * side))
    assert vin.patches.tolist() == [[0, j // side, j % side] for j in range(side * side)]
    size = cfg.vision_config.image_size
    assert vin.forward_kwargs()["pixel_values"].shape == ((1, 1, 3, size, size) if idefics else (1, 3, size, size))
    # the bridge runs the image through the Hugging Face model's own forward
    with torch.no_grad():
        ref = m.original_model(input_ids=vin.ids, **vin.forward_kwargs()).logits
        out = m(vin.ids, **vin.forward_kwargs())
    assert torch.allclose(ref, out, atol=1e-5) if gemma or idefics else torch.equal(ref, out)


@pytest.mark.parametrize("family", VLM_FAMILIES)
def test_the_visual_token_at_layer_zero_is_the_connector_output(vlms, family):
    """Which patch each visual token shows is right: the layer-0 state at the token of patch j is the projector's
    output for the tower's feature of patch j (a shuffled mapping would fail)."""
    m = vlms[family]
    img = _img(1)
    vin = encode(m, [img])
    hf = m.original_model
    with torch.no_grad():
        feats = hf.model.get_image_features(**vin.forward_kwargs()).pooler_output[0]  # [n_feat, d]
        r = visual_lens(m, [img], lens="embedding", layer=0, k=3)
        _, cache = m.run_with_cache(vin.ids, names_filter=["blocks.0.hook_resid_pre"], **vin.forward_kwargs())
    states = cache["blocks.0.hook_resid_pre"][0, vin.visual]
    offset = feats.shape[0] - vin.visual.numel()  # a CLS feature kept by "full" comes first
    assert torch.allclose(states, feats[offset:], atol=1e-5)
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


def test_idefics3_visual_tokens_fold_the_patch_blocks_they_are_labelled_with(vlms):
    """Idefics3's connector folds each 2 x 2 block of tower patches into one visual token: tag every patch feature
    with its index, run the model's own pixel shuffle, and read back which patches each token holds; token j must hold
    exactly the block at the (row, col) ``encode`` gives it."""
    m = vlms["idefics3"]
    cfg = m.original_model.config
    vin = encode(m, [_img(3)])
    n = cfg.vision_config.image_size // cfg.vision_config.patch_size  # patches per side
    s = cfg.scale_factor
    tags = torch.arange(n * n, dtype=torch.float32)[None, :, None].repeat(1, 1, 4)  # [1, patches, 4] all = index
    folded = m.original_model.model.connector.pixel_shuffle(tags, s)[0]  # [tokens, 4 * s * s]
    for (_, row, col), held in zip(vin.patches.tolist(), folded):
        block = {(row * s + dr) * n + col * s + dc for dr in range(s) for dc in range(s)}
        assert set(held.long().tolist()) == block


def test_a_qwen2_5_vl_folder_is_a_clear_error_that_installs_nothing(tmp_path, monkeypatch):
    """The bridge's Qwen2.5-VL adapter imports torchvision, which has no build for the pinned CPU torch: loading one
    is an InterpError naming torchvision, and no pip install starts (that would swap torch for a CUDA build)."""
    import subprocess

    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from interp.models import load_model

    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda *a, **k: calls.append(a))
    vision = dict(depth=1, hidden_size=16, intermediate_size=32, num_heads=2, out_hidden_size=32, patch_size=8,
                  spatial_merge_size=2, temporal_patch_size=2, window_size=16, fullatt_block_indexes=[0])
    text = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                num_key_value_heads=1, max_position_embeddings=64, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]})
    cfg = Qwen2_5_VLConfig(vision_config=vision, text_config=text, image_token_id=60, video_token_id=61,
                           vision_start_token_id=62, vision_end_token_id=63)
    Qwen2_5_VLForConditionalGeneration(cfg).save_pretrained(tmp_path)
    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(InterpError, match="torchvision"):
            load_model(tmp_path, device="cpu")
    else:  # a user with a torchvision build: the bridge takes it
        assert load_model(tmp_path, device="cpu").cfg.n_layers == 1
    assert calls == []


@pytest.mark.parametrize("family", ["llava-clip", "idefics3"])
def test_visual_states_stop_early_and_equal_the_full_run(vlms, family):
    """``visual_states`` runs only the blocks it needs (``stop_at_layer``) with the image in: the states of the layers it
    asks for equal those of a full forward's cache."""
    from interp.lens.visual import visual_states

    m = vlms[family]
    img = _img(4)
    vin, states = visual_states(m, ["ab ", img], [0, 1])
    names = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"]
    with torch.no_grad():
        _, cache = m.run_with_cache(vin.ids, names_filter=names, **vin.forward_kwargs())
    for layer, name in enumerate(names):
        assert torch.equal(states[layer], cache[name][0, vin.visual])
