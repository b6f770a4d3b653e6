"""Logit lens and tuned lens on SmolLM2-135M (nostalgebraist 2020; Belrose et al. 2023)."""

from __future__ import annotations

import pytest
import torch

from interp.lens.bundled import bundled_tuned_lens
from interp.lens.logit import logit_lens
from interp.lens.tuned import heldout_kl

FACTS = [
    ("The capital of France is", " Paris"),
    ("The Eiffel Tower is in the city of", " Paris"),
    ("The capital of Japan is", " Tokyo"),
    ("The capital of Italy is", " Rome"),
    ("The capital of Germany is", " Berlin"),
]


@torch.no_grad()
def test_last_row_is_the_models_distribution(smollm2):
    prompt = "The capital of France is"
    r = logit_lens(smollm2, prompt, keep_logprobs=True)
    want = torch.log_softmax(smollm2(smollm2.to_tokens(prompt))[0].float(), -1)
    # the last row runs the same final norm and unembedding on the same tensor: float32 rounding only
    torch.testing.assert_close(r.logprobs[-1], want, rtol=0, atol=1e-4)


@torch.no_grad()
def test_facts_resolve_late(smollm2):
    """The answer of a fact prompt becomes the logit lens's top-1 only in the last layers.

    Measured: " Paris" is top-1 from row 28 of 30 (layer 28's input) for "The capital of France is", and only at
    the output for the four others (the trial saw " Paris" from layer 27). We require the first top-1 row to be in
    the last 10% of the 31 rows, and the answer to be far from the top (rank > 10) at the middle layer.
    """
    n = smollm2.cfg.n_layers
    for prompt, answer in FACTS:
        r = logit_lens(smollm2, prompt, target=answer)
        rank = r.target_rank[:, -1]
        assert int(rank[-1]) == 1, (prompt, answer)
        first = int((rank == 1).nonzero().min())
        assert first >= 0.9 * n, (prompt, first)
        assert int(rank[n // 2]) > 10, (prompt, int(rank[n // 2]))


@pytest.fixture(scope="module")
def tuned(smollm2):
    lens = bundled_tuned_lens(smollm2)
    assert lens is not None, "data/lenses/smollm2-135m-tuned is missing: see data/lenses/README.md"
    return lens


@torch.no_grad()
def test_tuned_lens_beats_logit_lens_at_every_layer(smollm2, tuned, prose_heldout):
    # 4 paragraphs x 32 tokens: every row decodes through the 49,152-token unembedding, the cost of this test
    """Held-out prose (paragraphs the lens never saw): KL(final || lens) lower for the tuned lens at every layer.

    The shipped lens was trained 100 steps on the prose train split; its card lists the full table. The margin
    asked here (10% below the logit lens) is far inside what the card shows (2-6x lower in every layer).
    """
    from interp.corpora import cut_to_tokens

    texts = cut_to_tokens(prose_heldout[:4], smollm2, 32)
    logit = heldout_kl(smollm2, texts, batch_size=4)
    lens = heldout_kl(smollm2, texts, tuned, batch_size=4)
    assert float(logit[-1]) < 1e-4 and float(lens[-1]) < 1e-4  # final_post is the model itself for both
    assert bool((lens[:-1] < 0.9 * logit[:-1]).all()), list(zip(logit.tolist(), lens.tolist()))


@torch.no_grad()
def test_tuned_lens_resolves_facts_earlier(smollm2, tuned):
    """The tuned lens reads the answer out at an earlier layer than the logit lens (Belrose et al., fig. 1)."""
    earlier = 0
    for prompt, answer in FACTS[:3]:
        a = logit_lens(smollm2, prompt, target=answer).target_rank[:, -1]
        b = logit_lens(smollm2, prompt, target=answer, lens=tuned).target_rank[:, -1]
        earlier += int((b <= 10).nonzero().min()) < int((a <= 10).nonzero().min())
    assert earlier >= 2, earlier
