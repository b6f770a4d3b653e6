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
