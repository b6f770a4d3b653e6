"""Model loading: zoo models, random-weight families, clear errors."""

from __future__ import annotations

import pytest
import torch

from interp import InterpError, load_model
from interp.models import to_tokens


@pytest.mark.parametrize("family", ["gpt2", "llama", "neox"])
def test_random_families_boot_and_match_hf(random_models, family):
    model = random_models[family]
    assert not model.training
    tokens = to_tokens(model, "hello world")
    logits = model(tokens)
    assert logits.shape == (1, tokens.shape[1], model.cfg.d_vocab)
    # The bridge keeps raw HF weights: its logits equal the wrapped HF model's.
    hf = model.original_model(tokens).logits
    torch.testing.assert_close(logits, hf, atol=1e-4, rtol=1e-4)


def test_zoo_models_load(stories, bb):
    assert stories.cfg.n_layers == 4 and stories.cfg.d_model == 128
    assert bb.cfg.n_heads == 1
    toks = to_tokens(stories, "mia lives in")
    assert stories.to_str_tokens(toks)[0] == "<|bos|>"  # BOS prepended exactly once
    assert stories.to_str_tokens(toks)[1:] == [" mia", " lives", " in"]


def test_stories_knows_its_facts(stories):
    """The fact base is learned: the true home city is the top prediction for most names."""
    from interp.zoo.stories import NAMES, World

    world = World.from_seed(0)
    hits = 0
    for name in NAMES:
        logits = stories(to_tokens(stories, f"where does {name} live ? in"))[0, -1]
        hits += stories.to_single_str_token(int(logits.argmax())) == " " + world.home[name]
    assert hits >= 0.9 * len(NAMES), hits


def test_unknown_model_error_lists_zoo():
    with pytest.raises(InterpError, match="Bundled models: bb, scenes-vlm, stories.*smollm2-vlm.*network"):
        load_model("./no/such/dir")
    with pytest.raises(InterpError, match="empty"):
        load_model("  ")


def test_not_a_model_dir(tmp_path):
    with pytest.raises(InterpError, match="config.json"):
        load_model(tmp_path)


def test_prompt_errors(random_models):
    model = random_models["gpt2"]
    with pytest.raises(InterpError, match="empty"):
        to_tokens(model, "   ")
    with pytest.raises(InterpError, match="context"):
        to_tokens(model, "a" * 200)


def test_parameter_count_matches_hugging_face(stories, random_models):
    """The bridge keeps split q/k/v copies of GPT-2's fused c_attn; n_parameters counts each weight once."""
    import json

    from interp.models import n_parameters
    from interp.zoo import zoo_path

    assert n_parameters(stories) == json.loads((zoo_path("stories") / "zoo.json").read_text())["stats"]["parameters"]
    for family in ("llama", "neox"):
        model = random_models[family]
        assert n_parameters(model) == sum(p.numel() for p in model.original_model.parameters())
