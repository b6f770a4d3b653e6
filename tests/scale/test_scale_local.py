"""Sharded LatentLens indexes and corpus scans on the local backend (no Ray): equal to the one-piece results,
resumable, refusing a folder of another model / layers / settings, FAISS per shard with its recall@k."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from interp.cli import main
from interp.errors import InterpError
from interp.extreme import scan
from interp.lens import LatentIndex
from interp.lens.latent import ShardedIndex
from interp.scale import build_index, scan_corpus

pytestmark = pytest.mark.scale
LAYERS = [1, 2]


@pytest.fixture(scope="module")
def one_piece(stories, docs, one_thread_module):
    return LatentIndex.build(stories, docs, layers=LAYERS, batch_size=8, progress=False)


@pytest.fixture(scope="module")
def sharded(stories, docs, tmp_path_factory, one_thread_module):
    return build_index(stories, docs, out=tmp_path_factory.mktemp("s") / "idx", layers=LAYERS, batch_size=8, shard_docs=8,
                       progress=False)


def assert_same_index(a: LatentIndex, b: LatentIndex) -> None:
    for name in ("token_ids", "doc_ids", "positions"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for layer in a.layers:
        assert torch.equal(a.vectors[layer], b.vectors[layer]) and torch.equal(a.inv_norms[layer], b.inv_norms[layer])
    assert len(a.doc_tokens) == len(b.doc_tokens) and all(torch.equal(x, y) for x, y in zip(a.doc_tokens, b.doc_tokens))
    assert a.seen == b.seen and torch.equal(a.counts, b.counts)


def test_sharded_build_equals_one_piece_bit_for_bit(one_piece, sharded):
    assert isinstance(sharded, ShardedIndex) and len(sharded.shards) == 5 and len(sharded) == len(one_piece) > 1000
    assert_same_index(LatentIndex.load(sharded.path), one_piece)


def test_sharded_search_equals_one_piece_search(stories, one_piece, sharded):
    q = torch.randn(24, stories.cfg.d_model, generator=torch.Generator().manual_seed(0))
    for layers in (None, [2]):
        a, b = sharded.search(q, 7, layers, chunk=100), one_piece.search(q, 7, layers)
        assert torch.equal(a.rows, b.rows) and torch.equal(a.layers, b.layers) and torch.equal(a.sims, b.sims)
        assert a.snippets == b.snippets and a.tokens == b.tokens
    assert torch.equal(LatentIndex.open(sharded.path).search(q, 3).rows, one_piece.search(q, 3).rows)


def test_faiss_per_shard_recall(stories, one_piece, sharded):
    """Flat per shard is exact; HNSW32 per shard has recall@10 >= 0.95 against exact on these 1.6k x 2 vectors."""
    q = torch.randn(64, stories.cfg.d_model, generator=torch.Generator().manual_seed(1))
    exact = one_piece.search(q, 10)
    flat = sharded.search(q, 10, backend="faiss")
    assert torch.equal(flat.rows, exact.rows) and torch.equal(flat.layers, exact.layers)
    hnsw = sharded.search(q, 10, backend="faiss", faiss_index="HNSW32")
    key = lambda nb: (nb.rows + 10**7 * nb.layers).tolist()
    recall = sum(len(set(a) & set(b)) for a, b in zip(key(exact), key(hnsw))) / exact.rows.numel()
    print(f"HNSW32 per shard recall@10 = {recall:.3f}")
    assert recall >= 0.95
    # the per-shard FAISS indexes were cached in the folder: a fresh open reads them and finds the same rows
    assert len(list((sharded.path / "faiss").glob("*.faiss"))) == 2 * len(sharded.shards) * len(LAYERS)
    again = LatentIndex.open(sharded.path)
    assert torch.equal(again.search(q, 10, backend="faiss", faiss_index="HNSW32").rows, hnsw.rows)


def test_resume_after_interrupt_equals_uninterrupted(stories, docs, one_piece, tmp_path):
    out = tmp_path / "idx"

    def stop(n_done: int) -> None:
        if n_done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(stories, docs, out=out, layers=LAYERS, batch_size=8, shard_docs=8, progress=False, on_shard=stop)
    assert json.loads((out / "index.json").read_text())["complete"] == [0, 1]
    with pytest.raises(InterpError, match="incomplete: 2 of 5 shards"):
        LatentIndex.open(out)
    ran = []
    build_index(stories, docs, out=out, layers=LAYERS, batch_size=8, shard_docs=8, progress=False, on_shard=ran.append)
    assert ran == [3, 4, 5]  # the two complete shards were skipped
    assert_same_index(LatentIndex.load(out), one_piece)


def test_mismatching_folder_is_refused(stories, bb, docs, sharded):
    base = dict(out=sharded.path, layers=LAYERS, batch_size=8, shard_docs=8, progress=False)
    for change, what in ((dict(layers=[1]), "other layers"), (dict(max_per_token=5), "other settings"),
                         (dict(shard_docs=16), "other settings")):
        with pytest.raises(InterpError, match=what):
            build_index(stories, docs, **{**base, **change})
    with pytest.raises(InterpError, match="another corpus"):
        build_index(stories, docs[:-1], **base)
    with pytest.raises(InterpError, match="another model"):
        build_index(bb, ["a b a b a b a b"] * 3, **{**base, "layers": [1]})


def test_sharded_scan_equals_scan(stories, docs):
    """One shard is exactly ``scan``; five shards merged agree with it to float32 round-off (sums in another order)."""
    ref = scan(stories, docs, progress=False)
    one = scan_corpus(stories, docs, shard_docs=100, progress=False)
    five = scan_corpus(stories, docs, shard_docs=8, progress=False)
    for f in ("sink_score", "gu_share", "value_first", "value_other", "resid_first", "resid_other_max", "top_abs", "median_abs"):
        assert torch.equal(getattr(one, f), getattr(ref, f)), f
        torch.testing.assert_close(getattr(five, f), getattr(ref, f), rtol=1e-6, atol=0)
    assert one.massive == ref.massive and one.other_sinks == ref.other_sinks and one.n_tokens == five.n_tokens == ref.n_tokens
    assert [s[:2] for s in five.other_sinks] == [s[:2] for s in ref.other_sinks]


def test_ray_missing_is_one_line_error(stories, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InterpError, match=r"pip install \"interp-workbench\[scale\]\""):
        build_index("stories", ["one day mia found a key"], out=tmp_path / "i", backend="ray", progress=False)
    corpus = tmp_path / "c.txt"
    corpus.write_text("one day mia found a key in the garden .\n\nthe cat sat on the mat .\n")
    assert main(["scan", "--model", "stories", "--corpus", str(corpus), "--out", str(tmp_path / "s.html"), "--backend", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "pip install" in err


def test_cli_build_search_scan(tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": t}) for t in (
        "one day mia found a key in the garden . then mia took the key home .", "the cat sat on the mat and the dog ran .")))
    assert main(["index", "build", "--model", "stories", "--corpus", str(corpus), "--layers", "1,2", "--out",
                 str(tmp_path / "i"), "--quiet"]) == 0
    assert main(["index", "search", str(tmp_path / "i"), "mia found a key", "--layer", "2"]) == 0
    out = capsys.readouterr().out
    assert "rows x layers [1, 2]" in out and "⟨ key⟩" in out
    assert main(["scan", "--model", "stories", "--corpus", str(corpus), "--out", str(tmp_path / "s.html"), "--quiet"]) == 0
    html = (tmp_path / "s.html").read_text()
    assert "Extreme-token scan" in html and "sink score" in html
    assert main(["index", "build", "--model", "stories", "--corpus", str(corpus), "--layers", "1", "--out",
                 str(tmp_path / "i"), "--quiet"]) == 2
    assert "other layers" in capsys.readouterr().err
    # bfloat16 storage: the same rows, searched through the bfloat16 screen where the CPU has it
    assert main(["index", "build", "--model", "stories", "--corpus", str(corpus), "--layers", "1,2", "--out",
                 str(tmp_path / "b"), "--dtype", "bfloat16", "--quiet"]) == 0
    from interp.lens.latent import LatentIndex

    f16, b16 = LatentIndex.open(tmp_path / "i"), LatentIndex.open(tmp_path / "b")
    assert b16.dtype == torch.bfloat16 and len(b16) == len(f16)
    assert torch.equal(b16.shards[0].get("token_ids"), f16.shards[0].get("token_ids"))
    assert main(["index", "search", str(tmp_path / "b"), "mia found a key", "--layer", "2"]) == 0
    assert "⟨ key⟩" in capsys.readouterr().out


def test_parquet_corpus(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from interp.scale import read_corpus

    path = tmp_path / "c.parquet"
    pq.write_table(pa.table({"body": ["one day mia found a key", "", "the cat sat on the mat"]}), path)
    assert read_corpus(path, field="body") == ["one day mia found a key", "the cat sat on the mat"]
    with pytest.raises(InterpError, match="no column 'text' \\(columns: body\\)"):
        read_corpus(path)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InterpError, match="not a readable Parquet file"):
        read_corpus(tmp_path / "bad.parquet")
