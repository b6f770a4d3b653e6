"""Active/dormant heads, sharded: per-shard HeadActivity merged equals one run (exactly with one shard per domain)."""

from __future__ import annotations

import pytest
import torch

from interp.errors import InterpError
from interp.extreme.activity import head_activity, merge_activity
from interp.scale import activity_corpus

HEADS = [(0, 0), (1, 1), (2, 3)]


@pytest.fixture(scope="module")
def domains(docs):
    return {"a": docs[:12], "b": docs[12:20]}


def test_one_shard_per_domain_is_head_activity_bit_for_bit(stories, domains, one_thread_module):
    ref = head_activity(stories, domains, heads=HEADS, batch_size=4, progress=False)
    got = activity_corpus(stories, domains, heads=HEADS, shard_docs=100, batch_size=4, progress=False)
    assert got.domains == ref.domains and got.n_queries == ref.n_queries and got.n_scored == ref.n_scored
    for f in ("sink", "prev", "loss", "dloss_zero", "dloss_bos"):
        torch.testing.assert_close(getattr(got, f), getattr(ref, f), atol=0, rtol=0, equal_nan=True, msg=f)


def test_many_shards_merge_to_one_run(stories, domains, one_thread_module):
    """Query-weighted means of 4-document shards equal one run up to float32 rounding of the per-shard means
    (atol 1e-5 on attention means in [0, 1] and on loss changes of order 0.1-1 nats)."""
    ref = head_activity(stories, domains, heads=HEADS, batch_size=4, progress=False)
    got = activity_corpus(stories, domains, heads=HEADS, shard_docs=4, batch_size=4, progress=False)
    assert got.n_queries == ref.n_queries and got.n_scored == ref.n_scored
    for f in ("sink", "prev", "loss", "dloss_zero", "dloss_bos"):
        torch.testing.assert_close(getattr(got, f), getattr(ref, f), atol=1e-5, rtol=0, equal_nan=True, msg=f)
    assert torch.equal(got.measured, ref.measured) and torch.equal(got.dormant, ref.dormant)


def test_heads_by_count_are_picked_from_the_whole_corpus(stories, domains, one_thread_module):
    ref = head_activity(stories, domains, heads=3, batch_size=4, progress=False)
    got = activity_corpus(stories, domains, heads=3, shard_docs=5, batch_size=4, progress=False)
    assert torch.equal(got.measured, ref.measured) and int(got.measured[0].sum()) == 3


def test_unmergeable_parts_are_refused(stories, domains, one_thread_module):
    a = head_activity(stories, {"a": domains["a"]}, heads=[(0, 0)], progress=False)
    b = head_activity(stories, {"a": domains["b"]}, heads=[(1, 1)], progress=False)
    with pytest.raises(InterpError, match="different heads"):
        merge_activity([a, b])
    with pytest.raises(InterpError, match="nothing to merge"):
        merge_activity([])
