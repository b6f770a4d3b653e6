"""Attribution over image prompts on random tiny VLMs: the visual tokens' embeddings are the connector's output, every
method scores them, results say which score is which patch, IG stays complete, and text-only models refuse images."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from interp.attribution import TokenAttribution, attribute
from interp.attribution.vision import REPLACEMENT, connector_features, visual_inputs
from interp.errors import InterpError
from interp.models.vision import encode
from interp.testing import VLM_FAMILIES, random_model, random_vlm

METHODS = ["input_x_gradient", "gradient_norm", "integrated_gradients", "occlusion", "reagent", "attention_last_layer",
           "random"]


@pytest.fixture(scope="module")
def vlms():
    return {f: random_vlm(f) for f in VLM_FAMILIES}


LLAVA = [f for f in VLM_FAMILIES if f != "gemma3"]  # Gemma 3's scaled embeddings are refused (test below)


def test_gemma_style_scaled_embeddings_are_refused(vlms):
    with pytest.raises(InterpError, match="scales its token embeddings"):
        attribute(vlms["gemma3"], ["ab ", _img()], target="c", method="gradient_norm")


def _img(seed=0, h=40, w=50):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("family", LLAVA)
def test_the_hooked_forward_is_the_models_own(vlms, family):
    """On ids alone, inside ``visual_inputs``, the model computes what Hugging Face computes from ids and pixels."""
    m = vlms[family]
    vin = encode(m, ["ab ", _img(), " cd"])
    with torch.no_grad():
        ref = m(vin.ids, **vin.forward_kwargs())
        with visual_inputs(m, vin):
            got = m(vin.ids)
        after = m(vin.ids)  # the hook is gone: the <image> token's own embedding again
    assert torch.equal(ref, got)
    assert not torch.equal(ref, after)
    assert connector_features(m, vin).shape == (int((vin.ids == m.original_model.config.image_token_id).sum()), m.cfg.d_model)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_scores_the_visual_tokens_by_patch(vlms, method):
    m = vlms["llava-clip"]
    prompt = ["ab ", _img(1), " cd"]
    vin = encode(m, prompt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ReAGent may not converge on random weights
        a = attribute(m, prompt, target="ef", method=method)
    L = vin.ids.shape[1]
    assert a.scores.shape == (2, L + 1) and a.target_positions == [L, L + 1]
    assert [a.source_tokens[p] for p in vin.visual[:5].tolist()] == ["<img 0,0>", "<img 0,1>", "<img 0,2>", "<img 0,3>",
                                                                     "<img 1,0>"]
    vis = a.info["visual"]
    assert vis["positions"] == vin.visual.tolist() and vis["patches"] == vin.patches.tolist()
    assert vis["grid"] == list(vin.grid) and vis["replacement"] == REPLACEMENT
    grid = a.patch_scores(0)
    assert grid.shape == (1, *vin.grid)
    assert torch.equal(grid.flatten(), a.scores[0, vin.visual])
    assert torch.isfinite(a.scores[0, vin.visual]).all()
    if method != "attention_last_layer":  # random weights: attention may put next to nothing on the image
        assert a.scores[0, vin.visual].abs().sum() > 0


def test_gradients_reach_the_connector_output(vlms):
    """input x gradient at a visual token is the connector output times the gradient w.r.t. it (checked by hand)."""
    m = vlms["llava-clip"]
    prompt = [_img(2), " a"]
    vin = encode(m, prompt)
    a = attribute(m, prompt, target="b", method="input_x_gradient")
    hf = m.original_model
    with torch.no_grad():
        emb = hf.get_input_embeddings()(vin.ids)
        feats = connector_features(m, vin)
    emb = emb.clone()
    emb[0, vin.ids[0] == hf.config.image_token_id] = feats
    emb.requires_grad_(True)
    target = m.tokenizer.encode("b", add_special_tokens=False)[0]
    lp = torch.log_softmax(hf(inputs_embeds=emb).logits[0, -1].float(), -1)[target]
    (grad,) = torch.autograd.grad(lp, emb)
    want = (grad * emb.detach())[0].sum(-1)
    assert torch.allclose(a.scores[0, : vin.ids.shape[1]], want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", LLAVA)
def test_ig_is_complete_on_vlm_inputs(vlms, family):
    m = vlms[family]
    prompt = ["ab ", _img(3)]
    for reduction in ("sum", "l2"):
        a = attribute(m, prompt, target="c", method="integrated_gradients", reduction=reduction)
        assert float(a.completeness_error.max()) < 0.01
    a = attribute(m, prompt, target="c", method="integrated_gradients")
    vin = encode(m, prompt)
    # completeness: the signed sums over all tokens, visual ones included, add up to f(x) - f(baseline)
    diff = a.info["objective"][0] - a.info["baseline_objective"][0]
    assert abs(float(a.row(0).double().sum()) - diff) <= 0.01 * abs(diff)
    assert a.scores[0, vin.visual].abs().sum() > 0


def test_occlusion_replaces_a_patch_by_its_images_mean_visual_token(vlms):
    m = vlms["llava-clip"]
    prompt = ["a", _img(4)]
    vin = encode(m, prompt)
    a = attribute(m, prompt, target="b", method="occlusion")
    target = m.tokenizer.encode("b", add_special_tokens=False)[0]
    hf = m.original_model
    with torch.no_grad():
        emb = hf.get_input_embeddings()(vin.ids).clone()
        feats = connector_features(m, vin)
        slots = vin.ids[0] == hf.config.image_token_id
        emb[0, slots] = feats
        j = int(vin.visual[5])
        occluded = emb.clone()
        occluded[0, j] = feats.mean(0)
        p = [torch.softmax(hf(inputs_embeds=e).logits[0, -1].float(), -1)[target] for e in (emb, occluded)]
    assert torch.allclose(a.scores[0, j], p[0] - p[1], atol=1e-6)


def test_two_images_are_labelled_and_gridded_apart(vlms):
    m = vlms["llava-clip"]
    a = attribute(m, [_img(5), " and", _img(6)], target="x", method="gradient_norm")
    vin = encode(m, [_img(5), " and", _img(6)])
    second = vin.visual[vin.patches[:, 0] == 1]
    assert a.source_tokens[int(second[0])] == "<img 1:0,0>"
    assert a.patch_scores().shape == (2, *vin.grid)


def test_same_call_same_scores_and_text_prompts_unchanged(vlms, tmp_path):
    m = vlms["llava-clip"]
    prompt = ["ab ", _img(7)]
    for method in ("integrated_gradients", "reagent", "occlusion"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            one, two = (attribute(m, prompt, target="c", method=method) for _ in range(2))
        assert torch.equal(one.scores, two.scores)
    # a text prompt of the VLM: no visual info, the same scores as the ids given directly
    a = attribute(m, "abc", target="d", method="input_x_gradient")
    b = attribute(m, ["abc"], target="d", method="input_x_gradient")[0]  # a list of texts is a batch (interp.batch)
    assert "visual" not in a.info and "visual" not in b.info and torch.equal(a.scores, b.scores)
    with pytest.raises(ValueError, match="no visual tokens"):
        a.patch_scores()
    # the visual bookkeeping survives a save and load
    one.save(tmp_path / "a.safetensors")
    back = TokenAttribution.load(tmp_path / "a.safetensors")
    assert back.info["visual"] == one.info["visual"] and torch.equal(back.patch_scores(), one.patch_scores())


def test_text_models_refuse_images():
    text_only = random_model("llama")
    for method in ("integrated_gradients", "occlusion"):
        with pytest.raises(InterpError, match="text-only model"):
            attribute(text_only, ["hi ", _img()], target="x", method=method)
    with pytest.raises(InterpError, match="text or a token-id tensor"):  # a list of ids is no list of parts
        attribute(text_only, [0, 5, 7], target="x", method="occlusion")


def test_a_part_that_is_neither_text_nor_an_image_is_refused(vlms):
    with pytest.raises(InterpError, match="parts are text"):
        attribute(vlms["llava-clip"], [_img(), 5], target="x", method="occlusion")


def test_image_heatmap(vlms):
    from interp.viz.attribution_vision import patch_grid, patch_heatmap

    m = vlms["llava-clip"]
    img = _img(8)
    a = attribute(m, ["ab ", img], target="c", method="input_x_gradient")
    vin = encode(m, ["ab ", img])
    grid = patch_grid(a)
    assert grid.shape == vin.grid and torch.equal(grid.flatten(), a.scores[0, vin.visual])
    fig = patch_heatmap(a, img, truth=(1, 2))
    heat = next(t for t in fig.data if t.type == "heatmap")
    numbered = {(r, c): t for r, line in enumerate(heat.text) for c, t in enumerate(line) if t}
    best = grid.flatten().topk(3).indices.tolist()
    assert numbered == {divmod(j, vin.grid[1]): str(k + 1) for k, j in enumerate(best)}
    assert heat.zmid == 0 if float(grid.min()) < 0 else heat.zmin == 0
    assert any(s.type == "rect" for s in fig.layout.shapes)
    text = attribute(m, "abc", target="d", method="input_x_gradient")
    with pytest.raises(InterpError, match="no image heatmap"):
        patch_grid(text)
    with pytest.raises(InterpError, match="image 1 is not"):
        patch_grid(a, image=1)
