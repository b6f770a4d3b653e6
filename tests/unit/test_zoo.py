"""The zoo's generators expose correct ground truth, and training is deterministic for a seed."""

from __future__ import annotations

import json

import torch

from interp.zoo import bb as bbtask
from interp.zoo import ground_truth, stories, zoo_path


def test_generator_is_deterministic_and_dependencies_hold():
    world = stories.World.from_seed(0)
    a, b = stories.generate(world, 50, seed=3), stories.generate(world, 50, seed=3)
    assert [d.text for d in a] == [d.text for d in b]
    n = 0
    for d in a:
        for dep in d.dependencies:
            n += 1
            src, tgt = d.words[dep.source], d.words[dep.target]
            if dep.kind == "fact_subject":
                assert tgt == world.home[src]
            else:
                assert src == tgt and dep.source < dep.target
    assert n > 50


def test_sources_are_reliable_or_lie():
    world = stories.World.from_seed(0)
    for d in stories.generate(world, 200, seed=5):
        w = d.words
        for i in range(len(w) - 4):
            if w[i] == "the" and w[i + 2] == "says":
                name, food = w[i + 3], w[i + 5]
                expected = world.likes_true if w[i + 1] in stories.RELIABLE_SOURCES else world.likes_lie
                assert food == expected[name]


def test_decided_prompts_point_at_the_deciding_token(stories):
    tok = stories.tokenizer
    for p in ground_truth.decided_prompts(40):
        pos = p.source_token(tok)
        word = p.prompt.split(" ")[p.source_word]
        assert tok.convert_ids_to_tokens(tok(p.prompt).input_ids[pos]) == "Ġ" + word


def test_contrast_sets_are_disjoint_by_entity():
    train, held = ground_truth.contrast_set("train"), ground_truth.contrast_set("heldout")
    assert {c.entity for c in train}.isdisjoint({c.entity for c in held})
    assert all(c.preferred != c.dispreferred for c in train + held)


def test_bb_sampler_follows_the_rules():
    task = bbtask.BBTask.from_seed(0)
    x = task.sample(512, 64, torch.Generator().manual_seed(0))
    trig = task.trigger_mask(x)
    assert (x[:, 0] == task.bos_id).all() and not trig[:, 1].any()
    assert not (trig[:, 1:] & trig[:, :-1]).any()  # never two triggers in a row
    t = trig[:, 1:-1]
    assert t.sum() > 1000
    assert torch.equal(x[:, 2:][t], x[:, :-2][t])  # after a trigger, copy the token before it
    # Non-trigger transitions follow the bigram table: empirical vs true rows (chi-square-style bound).
    cur, nxt = x[:, 1:-1][~t], x[:, 2:][~t]
    counts = torch.zeros(64, 64)
    counts.index_put_((cur, nxt), torch.ones(len(cur)), accumulate=True)
    rows = counts.sum(-1) > 300
    emp = counts[rows] / counts[rows].sum(-1, keepdim=True)
    # With >300 samples per row, each entry's standard error is below sqrt(0.25/300) = 0.029; 0.15 is > 5 SE.
    assert (emp - task.bigram[rows]).abs().max() < 0.15


def test_training_is_bit_for_bit_deterministic(tmp_path):
    from interp.zoo.train import BBRecipe, train_bb

    r = BBRecipe(n_layer=1, n_embd=16, n_ctx=16, steps=5, batch_size=4)
    train_bb(tmp_path / "a", r)
    train_bb(tmp_path / "b", r)
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_stories_card_numbers():
    """Held-out loss is far below the unigram entropy and close to the achievable entropy."""
    stats = json.loads((zoo_path("stories") / "zoo.json").read_text())["stats"]
    assert stats["heldout_loss"] < 0.5 * stats["unigram_entropy"]
    assert stats["heldout_loss"] < stats["bigram_entropy"]
    # Within 0.15 nats/token of the exact generator entropy (a perfect model reaches it exactly).
    assert stats["heldout_loss"] - stats["achievable_entropy"] < 0.15
