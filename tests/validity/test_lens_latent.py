"""LatentLens index: self-retrieval, scale invariance, merged == brute force, sharded == unsharded,
dedup premise, layer alignment, save/load, FAISS recall, errors."""

from __future__ import annotations

import random

import pytest
import torch

from interp.errors import InterpError
from interp.lens import LatentIndex, default_layers, latent_lens
from interp.lens.latent import layer_hook
from interp.testing import random_model

rng = random.Random(0)
TEXTS = ["".join(rng.choice("abcdefgh ") for _ in range(rng.randrange(12, 40))) for _ in range(40)]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    # GPT-2 style (learned positions): random-weight Llama attention is near-uniform, so two orderings of the
    # same tokens can give numerically parallel states, which no search can tell apart
    return random_model("gpt2", n_layers=4, d_model=32)


@pytest.fixture(scope="module")
def index32(model):
    return LatentIndex.build(model, TEXTS, max_per_token=None, dtype=torch.float32, batch_size=7, progress=False)


def test_default_layers():
    assert default_layers(32) == [1, 2, 4, 8, 16, 24, 30, 31]
    assert default_layers(4) == [1, 2, 3]
    assert default_layers(1) == [1]


def test_self_retrieval_fp32(index32):
    """Every stored vector, as a query, is its own top-1 at cosine 1 within float32 round-off, both per layer and merged."""
    n = len(index32)
    for layer in index32.layers:
        own = index32.search(index32.vectors[layer], k=2, layers=[layer])
        assert torch.equal(own.rows[:, 0], torch.arange(n))
        merged = index32.search(index32.vectors[layer] * 3.7, k=2)
        assert torch.equal(merged.rows[:, 0], torch.arange(n)) and torch.all(merged.layers[:, 0] == layer)
        assert torch.allclose(merged.sims[:, 0], torch.ones(n), atol=1e-5)


def test_self_retrieval_raw_states(model, index32):
    """A stored row's raw hidden state (recomputed from its text) returns that row as top-1, at every stored layer."""
    rows = torch.linspace(0, len(index32) - 1, 8).long()
    names = {layer: layer_hook(model, layer) for layer in index32.layers}
    states = {layer: [] for layer in index32.layers}
    for r in rows.tolist():
        doc, pos = int(index32.doc_ids[r]), int(index32.positions[r])
        _, cache = model.run_with_cache(index32.doc_tokens[doc][None].long(), names_filter=lambda n: n in names.values())
        for layer, name in names.items():
            states[layer].append(cache[name][0, pos])
    for layer in index32.layers:
        nb = index32.search(torch.stack(states[layer]), k=1)
        assert torch.equal(nb.rows[:, 0], rows) and torch.all(nb.layers[:, 0] == layer)


def test_self_retrieval_fp16(model):
    """fp16 storage: at least 99.9% of rows retrieve themselves (near-duplicate states may tie after rounding)."""
    index = LatentIndex.build(model, TEXTS, max_per_token=None, progress=False)
    assert index.vectors[1].dtype == torch.float16
    hits = sum((index.search(index.vectors[x].float(), k=1, layers=[x]).rows[:, 0] == torch.arange(len(index))).float().mean()
               for x in index.layers) / len(index.layers)
    assert hits >= 0.999


def test_scale_invariance_and_cosine_range(index32):
    q = torch.randn(30, index32.d_model)
    base = index32.search(q, k=5)
    for c in (1e-3, 0.5, 250.0):
        scaled = index32.search(q * c, k=5)
        assert torch.equal(scaled.rows, base.rows) and torch.equal(scaled.layers, base.layers)
        torch.testing.assert_close(scaled.sims, base.sims, atol=1e-6, rtol=0)
    assert torch.all(base.sims <= 1 + 1e-6) and torch.all(base.sims >= -1 - 1e-6)
    assert torch.all(base.sims[:, :-1] >= base.sims[:, 1:])


@pytest.mark.parametrize("chunk", [97, 65536])
def test_merged_search_equals_brute_force(index32, chunk):
    q = torch.randn(40, index32.d_model)
    for layers in (None, [1, 3]):
        a, b = index32.search(q, k=6, layers=layers, chunk=chunk), index32.brute_force(q, k=6, layers=layers)
        assert torch.equal(a.rows, b.rows) and torch.equal(a.layers, b.layers)
        torch.testing.assert_close(a.sims, b.sims, atol=1e-6, rtol=0)


def test_sharded_build_equals_one_build(model, index32, tmp_path):
    """Building over two shards (with a save/load in between) gives the same rows as one build; search agrees."""
    first = LatentIndex.build(model, TEXTS[:15], max_per_token=None, dtype=torch.float32, batch_size=4, progress=False,
                              path=tmp_path / "idx")
    again = LatentIndex.load(tmp_path / "idx").add(model, TEXTS[15:], batch_size=9, progress=False)
    assert len(first) < len(again) == len(index32)
    for name in ("token_ids", "doc_ids", "positions"):
        assert torch.equal(getattr(again, name), getattr(index32, name))
    for layer in index32.layers:
        # different batch shapes may change float32 round-off of the same states
        torch.testing.assert_close(again.vectors[layer], index32.vectors[layer], atol=1e-5, rtol=0)
    q = torch.randn(10, index32.d_model)
    assert torch.equal(again.search(q, 5).rows, index32.search(q, 5).rows)


def test_save_load_roundtrip(index32, tmp_path):
    path = index32.save(tmp_path / "i")
    back = LatentIndex.load(path)
    q = torch.randn(5, index32.d_model)
    a, b = index32.search(q, 4), back.search(q, 4)
    assert torch.equal(a.rows, b.rows) and a.snippets == b.snippets and a.tokens == b.tokens
    assert back.layers == index32.layers and back.seen == index32.seen


def test_dedup_premise_and_keep_rules(model):
    """Shared prefixes give the same states under right padding, so the second copy is skipped; the cap holds."""
    texts = ["abc defg hij", "abc defg xyz and more text", "abc de"]
    seqs = [model.to_tokens(t)[0] for t in texts]
    ids = torch.zeros(3, max(map(len, seqs)), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    name = layer_hook(model, 2)
    _, batched = model.run_with_cache(ids, names_filter=name)
    _, alone = model.run_with_cache(seqs[0][None], names_filter=name)
    shared = 10  # BOS + "abc defg " (9 characters): the first 10 positions have equal prefixes in texts 0 and 1
    torch.testing.assert_close(batched[name][1, :shared], alone[name][0, :shared], atol=1e-5, rtol=0)
    index = LatentIndex.build(model, texts, layers=[2], max_per_token=None, min_pos=1, progress=False)
    keys = {(tuple(index.doc_tokens[d][: p + 1].tolist())) for d, p in zip(index.doc_ids.tolist(), index.positions.tolist())}
    assert len(keys) == len(index)  # no prefix stored twice
    assert len(index) == (len(seqs[0]) - 1) + (len(seqs[1]) - shared) + 0  # text 2 is a prefix of text 0: nothing new
    capped = LatentIndex.build(model, TEXTS, layers=[2], max_per_token=3, progress=False)
    assert int(torch.bincount(capped.token_ids.long()).max()) == 3 and torch.all(capped.positions >= 2)


def test_layer_alignment(model, index32):
    """Row i is the same (text, position) at every stored layer: its stored vector matches a fresh forward pass."""
    for r in (0, len(index32) - 1):
        doc, pos = int(index32.doc_ids[r]), int(index32.positions[r])
        _, cache = model.run_with_cache(index32.doc_tokens[doc][None].long())
        assert index32.doc_tokens[doc][pos] == index32.token_ids[r]
        for layer in index32.layers:
            # independent of layer_hook's naming: layer l is the input of block l
            fresh = torch.nn.functional.normalize(cache[f"blocks.{layer}.hook_resid_pre"][0, pos], dim=-1)
            torch.testing.assert_close(index32.vectors[layer][r], fresh, atol=1e-5, rtol=0)


def test_latent_lens_result(model, index32):
    r = latent_lens(model, "abc def", index32, k=3)
    n = model.cfg.n_layers
    assert r.layers == list(range(n + 1)) and r.labels[-1] == "final_post" and r.sims.shape == (n + 1, len(r.tokens), 3)
    assert all(sl in index32.layers for sl in r.source_layers.unique().tolist())
    one = latent_lens(model, "abc def", index32, layer=2, k=3)
    assert torch.equal(one.rows[0], r.rows[2]) and one.neighbours[0] == r.neighbours[2]
    assert "⟨" in r.snippets[0][0][0]


def test_faiss_backend(index32):
    """FAISS exact ("Flat") equals torch search; HNSW recall@5 against exact is high on this small set.

    FAISS is an optional extra for users (pip install faiss-cpu) but part of the test extra, so this always runs.
    """
    import faiss  # noqa: F401  (fails loudly if the test extra is not installed)
    q = torch.randn(50, index32.d_model)
    exact = index32.search(q, 5)
    flat = index32.search(q, 5, backend="faiss")
    assert torch.equal(flat.rows, exact.rows)
    hnsw = index32.search(q, 5, backend="faiss", faiss_index="HNSW32")
    recall = sum(len(set(a) & set(b)) for a, b in zip((exact.rows + 10**6 * exact.layers).tolist(),
                                                     (hnsw.rows + 10**6 * hnsw.layers).tolist())) / exact.rows.numel()
    assert recall >= 0.9  # HNSW32 on ~1k unit vectors of dimension 32 is near-exact; 0.9 leaves slack for graph randomness


def test_errors(model, index32):
    with pytest.raises(InterpError, match="shape"):
        index32.search(torch.randn(2, 7))
    with pytest.raises(InterpError, match="not stored"):
        index32.search(torch.randn(2, index32.d_model), layers=[0])
    with pytest.raises(InterpError, match="out of range"):
        LatentIndex.build(model, TEXTS, layers=[99], progress=False)
    with pytest.raises(InterpError, match="empty"):
        LatentIndex.build(model, ["", "  "], progress=False)
    other = random_model("gpt2", n_layers=4, d_model=32, seed=3)
    with pytest.raises(InterpError, match="other weights"):
        latent_lens(other, "abc", index32)
    assert latent_lens(other, "abc", index32, allow_other_model=True).sims.shape[0] == 5
    with pytest.raises(InterpError, match="not a LatentLens"):
        LatentIndex.load("/nonexistent")
