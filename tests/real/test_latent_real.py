"""LatentLens on SmolLM2-135M: an index of real prose and code at several depths."""

from __future__ import annotations

import pytest
import torch

from interp.corpora import code, cut_to_tokens, prose
from interp.lens.latent import LatentIndex, layer_states

LAYERS = [1, 10, 20, 28]


@pytest.fixture(scope="module")
def index(smollm2):
    docs = cut_to_tokens(prose("train")[:24], smollm2, 40) + cut_to_tokens(code("train")[:24], smollm2, 40)
    return LatentIndex.build(smollm2, docs, layers=LAYERS, progress=False)


def test_stored_vectors_retrieve_themselves(index):
    rows = torch.arange(0, len(index), max(1, len(index) // 40))
    for layer in LAYERS:
        hit = index.search(index.vectors[layer][rows].float(), k=1, layers=[layer])
        assert bool((hit.rows[:, 0] == rows).all()), layer
        # fp16 storage: the stored row against its own float32 copy is cosine 1 within half-precision rounding
        assert float(hit.sims[:, 0].min()) > 0.999


@torch.no_grad()
def test_same_token_share_falls_with_depth(smollm2, index):
    """Share of held-out positions whose nearest stored state (same layer) is the same token.

    What we measured (60 documents x 48 tokens, 8 layers): 0.74 at layer 1, 0.73 / 0.73 / 0.72 / 0.70 at layers
    4-16, 0.66 at 20, 0.56 at 24, 0.43 at 28: it does not rise, it falls, slowly through the middle and fast in the
    last third, as upper layers encode the context and the next token more than the current one. Asked here: the
    share never rises by more than 0.05 from one stored layer to the next (sampling noise on ~250 queries is
    about 0.03) and the last layer is at least 0.15 below the first.
    """
    queries = cut_to_tokens(prose("heldout")[:6], smollm2, 48)
    share = []
    for layer in LAYERS:
        same = total = 0
        for text in queries:
            ids = smollm2.to_tokens(text)
            states = layer_states(smollm2, ids, [layer])[layer][0, 2:]
            hit = index.search(states, k=1, layers=[layer])
            same += int((hit.token_ids[:, 0] == ids[0, 2:]).sum())
            total += states.shape[0]
        share.append(same / total)
    assert all(b <= a + 0.05 for a, b in zip(share, share[1:])), share
    assert share[-1] <= share[0] - 0.15, share
