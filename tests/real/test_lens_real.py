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


@torch.no_grad()
def test_bare_word_target_tracks_the_token_the_model_continues_with(smollm2):
    """Issue 36: "Paris" is a token both bare (38634) and with its space (7042). After "The capital of France is" the
    model continues with ' Paris' (p 0.75, rank 1; the bare 'Paris' is rank 31, p 0.0016, measured), so target="Paris"
    must track ' Paris' and say so, naming both ids; tracking the bare token would read as "the answer never emerges"."""
    spaced = smollm2.tokenizer.encode(" Paris", add_special_tokens=False)
    bare = smollm2.tokenizer.encode("Paris", add_special_tokens=False)
    assert len(spaced) == 1 and len(bare) == 1 and spaced != bare
    r = logit_lens(smollm2, "The capital of France is", target="Paris")
    assert r.target_id == spaced[0] and r.target == " Paris"
    assert int(r.target_rank[-1, -1]) == 1
    assert f"id {spaced[0]}" in r.target_note and f"id {bare[0]}" in r.target_note
    explicit = logit_lens(smollm2, "The capital of France is", target=" Paris")
    assert torch.equal(explicit.target_rank, r.target_rank) and explicit.target_note == ""


@torch.no_grad()
def test_latent_lens_flags_a_token_the_corpus_never_covers(smollm2):
    """Issue 36: an index of Python prose and code returns confident-looking neighbours for ' France' (' object',
    'string', cosine 0.47-0.84) that describe nothing. Its match percentile (against the corpus's own tokens, read at
    the same layer and searched the same way) must mark them weak, while ' of' and ' is', which the corpus is full of,
    are not. Measured on this 48-text index: ' France' p0 / p2 / p2 at layers 1 / 10 / 20; ' of' and ' is' p12-p54."""
    from interp.corpora import code, cut_to_tokens, prose
    from interp.lens.latent import LatentIndex, latent_lens
    from interp.lens.latent.quality import WEAK

    docs = cut_to_tokens(prose("train")[:24], smollm2, 40) + cut_to_tokens(code("train")[:24], smollm2, 40)
    index = LatentIndex.build(smollm2, docs, layers=[1, 10, 20, 28], progress=False)
    r = latent_lens(smollm2, "The capital of France is", index, layer=[1, 10, 20], k=3)
    pos = {t: i for i, t in enumerate(r.tokens)}
    france = r.match_percentile[:, pos[" France"]]
    covered = r.match_percentile[:, [pos[" of"], pos[" is"]]]
    assert bool((france < WEAK).all()), france.tolist()
    assert bool(r.weak()[:, pos[" France"]].all())
    assert bool((covered >= 2 * WEAK).all()), covered.tolist()
