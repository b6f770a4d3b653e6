"""Exact top-k over stored vectors: the threaded CPU split gives bit-identical results for any worker count, block and
chunk size, equal to one brute-force product (float16, bfloat16 and float32 storage)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from interp.lens.latent.search import exact_topk


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_exact_topk_independent_of_workers(dtype):
    g = torch.Generator().manual_seed(0)
    E = torch.randn(5000, 24, generator=g).to(dtype)
    E[1234] = E[77]  # an exact tie: both rows must be kept or ordered the same way every time
    inv = 1 / E.float().norm(dim=1)
    q = F.normalize(torch.cat([E[77:78].float(), torch.randn(7, 24, generator=g)]), dim=1)
    ref_sims = (q @ (E.float() * inv[:, None]).T)
    ref_s, ref_i = ref_sims.topk(9, dim=1)
    runs = [exact_topk(q, E, inv, 9, chunk, offset=10, block=block, workers=w)
            for w in (1, 2, 3) for block, chunk in ((256, 1000), (2048, 65536), (97, 300))]
    for s, i in runs:
        assert s.shape == (8, 9) and i.shape == (8, 9)
        torch.testing.assert_close(s, ref_s, atol=1e-5, rtol=0)  # vs one product: float rounding only
        assert torch.equal(i[1:] - 10, ref_i[1:])  # no ties among random rows: the same rows in the same order
        assert (i[0, :2] - 10).tolist() == [77, 1234]  # equal cosines: the smaller row first
    for block_runs in (runs[0::3], runs[1::3], runs[2::3]):  # same block and chunk, workers 1 / 2 / 3: same bits
        for s, i in block_runs[1:]:
            assert torch.equal(s, block_runs[0][0]) and torch.equal(i, block_runs[0][1])
    # fewer rows than k: every row, best first
    s, i = exact_topk(q, E[:5], inv[:5], 9, 65536, workers=2)
    assert i.shape == (8, 5) and torch.all(s[:, :-1] >= s[:, 1:])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_shard_tensors_are_memory_mapped_with_their_stored_bits(tmp_path, dtype):
    """``files.memmap`` maps a shard's vectors from disk (bfloat16, which numpy lacks, through an int16 view) and
    gives back exactly the stored values, read-only, without reading the file into memory."""
    from safetensors.torch import save_file

    from interp.lens.latent.files import memmap, read_header

    v = torch.randn(300, 24, generator=torch.Generator().manual_seed(2)).to(dtype)
    path = tmp_path / "shard.safetensors"
    save_file({"other": torch.arange(5, dtype=torch.int32), "vectors.0": v}, str(path))
    header, start = read_header(path)
    got = memmap(path, header, start, "vectors.0")
    assert got.dtype == dtype and torch.equal(got.view(torch.uint8), v.view(torch.uint8))  # the same bytes
    # a map, not a copy: bytes changed in the file afterwards show through
    with open(path, "r+b") as f:
        f.seek(start + header["vectors.0"]["data_offsets"][0])
        f.write(b"\0" * v.element_size() * 24)
    assert torch.equal(got[0], torch.zeros(24, dtype=dtype)) and torch.equal(got[1:], v[1:])


def test_bfloat16_screen_then_exact_finds_the_exact_top_k_among_near_ties(monkeypatch):
    """bfloat16 rows on a CPU with native bf16 products are screened in bf16 and the survivors scored exactly: rows
    whose cosines differ by far less than bf16's resolution (2^-8) still come back as the float64 top-k, in order,
    whatever the chunk and worker count."""
    from interp.lens.latent import search

    g = torch.Generator().manual_seed(1)
    d = 64
    base = F.normalize(torch.randn(d, generator=g), dim=0)
    E = torch.randn(20000, d, generator=g).to(torch.bfloat16)  # far rows
    near = torch.randint(0, 20000, (500,), generator=g)  # 500 rows whose cosines to base lie within ~0.01: about a
    E[near] = (base[None] + 0.03 * torch.randn(500, d, generator=g)).to(torch.bfloat16)  # bf16 step (2^-8) apart
    inv = 1 / E.float().norm(dim=1)
    q = torch.stack([base, F.normalize(torch.randn(d, generator=g), dim=0)])
    ref = (q.double() @ (E.double() * inv.double()[:, None]).T)
    ref_s, ref_i = ref.topk(60, dim=1)
    # k: the first count from 25 whose k-th cosine is clear of the next beyond float32 rounding, for both queries
    k = next(k for k in range(25, 59) if bool((ref_s[:, k - 1] - ref_s[:, k] > 1e-6).all()))
    runs = [search.exact_topk(q, E, inv, k, chunk, block=block, workers=w)
            for w in (1, 2) for block, chunk in ((512, 3000), (2048, 65536))]
    for s, i in runs:
        for row in range(2):  # the same 25 rows as float64 (order may differ only among float32-rounding ties)
            assert set(i[row].tolist()) == set(ref_i[row, :k].tolist())
        torch.testing.assert_close(s.double(), ref_s[:, :k], atol=1e-6, rtol=0)
        assert torch.all(s[:, :-1] >= s[:, 1:])
    for s, i in runs[1:]:
        assert torch.equal(s, runs[0][0]) and torch.equal(i, runs[0][1])
    if search.native_bf16():  # the widened float32 path finds the same rows
        monkeypatch.setattr(search, "native_bf16", lambda: False)
        s, i = search.exact_topk(q, E, inv, k, 3000, block=512, workers=1)
        assert all(set(i[r].tolist()) == set(runs[0][1][r].tolist()) for r in range(2))


def test_bfloat16_screen_floor_drops_only_rows_that_cannot_enter_the_top_k(monkeypatch):
    """The running floor ((k-th exact cosine so far) - delta) of the bfloat16 screen: a floor below every row changes
    nothing, a floor above every row leaves no candidate (an empty [n, 0] result, which the running merge absorbs)."""
    from interp.lens.latent import search
    from interp.lens.latent.search import _screened_topk

    g = torch.Generator().manual_seed(3)
    rows = torch.randn(3000, 32, generator=g).to(torch.bfloat16)
    w = 1 / rows.float().norm(dim=1)
    q = F.normalize(torch.randn(4, 32, generator=g), dim=1)
    qb, delta, out = q.to(torch.bfloat16), 2.0**-7, torch.empty(4, 3000)
    s0, i0 = _screened_topk(q, qb, delta, rows, w, 7, None, out)
    s1, i1 = _screened_topk(q, qb, delta, rows, w, 7, torch.full((4, 1), -2.0), out)
    assert torch.equal(s0, s1) and torch.equal(i0, i1) and s0.shape == (4, 7)
    s2, i2 = _screened_topk(q, qb, delta, rows, w, 7, torch.full((4, 1), 2.0), out)
    assert s2.shape == (4, 0) and i2.shape == (4, 0)
    # a floor just under each query's 3rd best keeps its top 3 (exact cosines), possibly fewer than k rows
    s3, i3 = _screened_topk(q, qb, delta, rows, w, 7, s0[:, 2:3] - delta, out)
    assert torch.equal(s3[:, :3], s0[:, :3]) and torch.equal(i3[:, :3], i0[:, :3])
    # a floor that leaves more rows than _MAX_CANDIDATES falls back to the chunk's own k-th best: same result
    monkeypatch.setattr(search, "_MAX_CANDIDATES", 5)
    s4, i4 = _screened_topk(q, qb, delta, rows, w, 7, torch.full((4, 1), -2.0), out)
    assert torch.equal(s4, s0) and torch.equal(i4, i0)


def test_parts_equal_one_piece_whatever_the_split():
    """Several stored matrices (a sharded index's shards) searched as parts by a pool of threads give the one-piece
    result bit for bit, for every dtype (bfloat16: near-tie rows as above, spread over the parts), 1-3 threads."""
    from interp.lens.latent.search import exact_topk_parts

    g = torch.Generator().manual_seed(4)
    d, k = 48, 12
    base = F.normalize(torch.randn(d, generator=g), dim=0)
    E0 = torch.randn(9000, d, generator=g)
    near = torch.randint(0, 9000, (300,), generator=g)
    E0[near] = base[None] + 0.03 * torch.randn(300, d, generator=g)
    q = torch.stack([base, F.normalize(torch.randn(d, generator=g), dim=0), F.normalize(base + 0.1 * torch.randn(d, generator=g), dim=0)])
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        E = E0.to(dtype)
        inv = 1 / E.float().norm(dim=1)
        one = exact_topk(q, E, inv, k, 1024, block=256, workers=1)
        cuts = (0, 2560, 2560, 2816, 9000)  # an empty part and unequal ones
        parts = [(E[a:b], inv[a:b], a) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        for w in (1, 2, 3):
            s, i = exact_topk_parts(q, parts, k, 1024, block=256, workers=w)
            assert torch.equal(s, one[0]) and torch.equal(i, one[1]), (dtype, w)
