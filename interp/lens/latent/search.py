"""Nearest-neighbour search over stored unit vectors: query checks, exact chunked top-k, FAISS, the merge rule.

Both the in-memory ``LatentIndex`` and the sharded ``ShardedIndex`` search with these functions, so a sharded
index returns what the same index in one piece returns. Candidates carry a global id
``layer_position * n_rows + row``; merging sorts by cosine, ties broken by the smaller global id.
"""

from __future__ import annotations

import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from interp.errors import InterpError
from interp.results import Result

__all__ = ["Neighbors", "check_queries", "exact_topk", "exact_topk_parts", "merge_topk", "faiss_build", "faiss_topk", "check_k"]


@dataclass(frozen=True)
class Neighbors(Result):
    """Top-k corpus neighbours of each query vector, merged over the searched layers (best first)."""

    sims: torch.Tensor
    "[query, k] cosine similarities"
    rows: torch.Tensor
    "[query, k] row ids in the index"
    layers: torch.Tensor
    "[query, k] the model layer each neighbour was stored from"
    token_ids: torch.Tensor
    "[query, k] the neighbours' token ids"
    tokens: list
    "[query, k] their token strings (nested lists)"
    snippets: list
    "[query, k] their corpus contexts (the token in ⟨ ⟩)"
    _shapes = {"sims": "query k", "rows": "query k", "layers": "query k", "token_ids": "query k", "tokens": "query k",
               "snippets": "query k"}


def check_k(k) -> int:
    """``k`` as an int >= 1; raises ``InterpError`` for anything else (floats, strings, bools, k < 1)."""
    if isinstance(k, bool) or not isinstance(k, int):
        raise InterpError(f"k must be a whole number of neighbours, got {k!r}")
    if k < 1:
        raise InterpError(f"k must be at least 1, got {k}")
    return k


def check_queries(vectors, d_model: int, n_rows: int) -> torch.Tensor:
    """Unit float32 queries [n, d_model] from ``vectors`` ([n, d_model] or [d_model]).

    Raises ``InterpError`` for a wrong shape, a non-finite entry (NaN / inf), a zero vector or an empty index.
    """
    q = torch.as_tensor(vectors).detach().float().cpu()
    if q.ndim == 1:
        q = q[None]
    if q.ndim != 2 or q.shape[1] != d_model or q.shape[0] == 0:
        raise InterpError(f"query vectors must have shape [n, {d_model}] with n >= 1, got {tuple(q.shape)}")
    bad = ~torch.isfinite(q).all(dim=1)
    if bad.any():
        raise InterpError(f"query vector {int(bad.nonzero()[0])} has NaN or infinite entries: a query must be finite")
    if (q.norm(dim=1) == 0).any():
        raise InterpError("a query vector is all zeros: it has no direction to compare by cosine")
    if n_rows == 0:
        raise InterpError("the index is empty: build it from a corpus first")
    return F.normalize(q, dim=-1)


def exact_topk(q: torch.Tensor, E: torch.Tensor, inv: torch.Tensor, k: int, chunk: int,
               offset: int = 0, block: int = 2048, workers: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k (cosine [n, k'], row [n, k']) of unit queries ``q`` [n, d] against stored vectors ``E`` [rows, d]
    with inverse norms ``inv`` [rows]; row ids start at ``offset``; k' = min(k, rows). ``exact_topk_parts`` with one part."""
    return exact_topk_parts(q, [(E, inv, offset)], k, chunk, block, workers)


def exact_topk_parts(q: torch.Tensor, parts: list[tuple[torch.Tensor, torch.Tensor, int]], k: int, chunk: int,
                     block: int = 2048, workers: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k (cosine [n, k'], id [n, k']) of unit queries ``q`` [n, d] over several stored matrices (the layers
    and shards of an index): ``parts`` is a list of (vectors ``E`` [rows, d], inverse norms ``inv`` [rows], ``offset``),
    row r of a part has id ``offset + r``; k' = min(k, all rows). Equal cosines are ordered by the smaller id.

    The parts are cut into tasks of ``chunk`` rows (a multiple of ``block``), largest first, which ``workers`` threads
    (default ``torch.get_num_threads()``) take one at a time, each running torch on one thread and folding its tasks
    into its own running top-k; the threads' top-k are merged at the end. A [16, d] x [d, block] product does not
    parallelise inside torch (two intra-op threads were slower than one), while two threads on separate rows are 1.7x
    one, and taking tasks as they come keeps both busy to the end (no wait at each shard). On the CPU, float16 rows are
    widened to float32 ``block`` rows at a time into a reused buffer (a fresh float32 copy of each chunk costs more in
    page faults than the matmul itself) and multiplied in float32; bfloat16 rows on a CPU with native bfloat16 products
    are screened in bfloat16 and only rows that can still enter the thread's running top-k are scored exactly
    (``_screened_topk``). Every row's cosine is computed by the same product of the same block (or its own exact dot
    product) whichever thread takes it, so the result does not depend on ``workers`` or on the order tasks are taken.
    """
    parts = [(E, inv, off) for E, inv, off in parts if E.shape[0]]
    total = sum(E.shape[0] for E, _, _ in parts)
    if not parts or k < 1:
        return torch.empty(q.shape[0], 0), torch.empty(q.shape[0], 0, dtype=torch.long)
    device = parts[0][0].device
    if device.type != "cuda":
        chunk = max(block, chunk // block * block)  # blocks start at multiples of ``block`` for every worker count
    tasks = [(E, inv, a, min(a + chunk, E.shape[0]), off) for E, inv, off in parts for a in range(0, E.shape[0], chunk)]
    if device.type == "cuda":
        return _fold_topk(q.to(device, parts[0][0].dtype), iter(tasks), k, chunk, None)
    qm = q.float().contiguous()
    tasks.sort(key=lambda t: t[3] - t[2], reverse=True)  # stable: small tasks last, where they even out the threads
    workers = max(1, min(workers or torch.get_num_threads(), len(tasks)))
    queue, lock = iter(tasks), threading.Lock()

    def take():
        while True:
            with lock:
                task = next(queue, None)
            if task is None:
                return
            yield task

    if workers == 1:
        found = [_fold_topk(qm, take(), k, chunk, block)]
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                found = [f for f in pool.map(lambda _: _fold_topk(qm, take(), k, chunk, block), range(workers)) if f[0] is not None]
        finally:
            torch.set_num_threads(threads)
    return merge_topk(torch.cat([f[0] for f in found], 1), torch.cat([f[1] for f in found], 1), min(k, total))


def _fold_topk(qm: torch.Tensor, tasks, k: int, chunk: int, block: int | None) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Running top-k (cosine, id) [n, k'] over ``tasks`` (an iterator of (E, inv, start, stop, offset): rows
    ``start:stop`` of E, ids offset + row); (None, None) when it yields none. ``block``: widen float16 rows ``block``
    at a time into a float32 buffer (CPU), ``None``: multiply the stored dtype directly. bfloat16 rows on a CPU with
    native bfloat16 products are screened instead (``_screened_topk``), skipping rows below the k-th best so far."""
    qb = qm.to(torch.bfloat16) if block is not None else None
    delta = 2.0**-7 * float(qm.norm(dim=1).max())
    widen_buf = sims_buf = None
    best_s = best_i = None
    for E, inv, start, stop, offset in tasks:
        screened = block is not None and E.dtype == torch.bfloat16 and native_bf16()
        if block is not None and sims_buf is None:
            sims_buf = torch.empty(qm.shape[0], chunk)
        if screened:
            floor = best_s[:, -1:] - delta if best_s is not None and best_s.shape[1] == k else None
            s, i = _screened_topk(qm, qb, delta, torch.as_tensor(E[start:stop]), torch.as_tensor(inv[start:stop]), k,
                                  floor, sims_buf[:, : stop - start])
        else:
            if block is None:
                sims = (qm @ torch.as_tensor(E[start:stop]).T).float()
            else:
                sims = sims_buf[:, : stop - start]
                for b0 in range(start, stop, block):
                    b1 = min(b0 + block, stop)
                    rows = torch.as_tensor(E[b0:b1])
                    if E.dtype != torch.float32:
                        if widen_buf is None:
                            widen_buf = torch.empty(block, E.shape[1])
                        rows = widen_buf[: b1 - b0].copy_(rows)
                    torch.mm(qm, rows.T, out=sims[:, b0 - start : b1 - start])
            sims = sims * torch.as_tensor(inv[start:stop]).to(qm.device)
            s, i = sims.topk(min(k, sims.shape[1]), dim=1)
        i = i + (start + offset)
        if best_s is not None:
            s, i = merge_topk(torch.cat([best_s, s], 1), torch.cat([best_i, i], 1), k)
        best_s, best_i = s, i
    return best_s, best_i


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX, read from /proc/cpuinfo; False elsewhere)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return torch.backends.mkldnn.is_available() and ("avx512_bf16" in flags or "amx_bf16" in flags)


_MAX_CANDIDATES = 4096
"rows of a chunk scored exactly under the running floor alone before the chunk's own k-th best is used to cut them"


def _screened_topk(qm: torch.Tensor, qb: torch.Tensor, delta: float, rows: torch.Tensor, w: torch.Tensor,
                   k: int, floor: torch.Tensor | None, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (cosine, row within ``rows``) [n, <= k] of bfloat16 ``rows`` with inverse norms ``w``: screen, then
    score exactly. ``qb``: the unit queries ``qm`` rounded to bfloat16; ``delta``: 2^-7 x the largest query norm;
    ``floor`` ([n, 1] or None): (k-th best exact cosine of the rows folded before) - ``delta``; ``out``: a float32
    [n, rows] buffer for the screen.

    Screen: ``qb`` times the stored rows as they are (no widening; 8x less work than the float32 path on
    AVX512-BF16), float32 accumulation, bfloat16 output. Its cosine differs from the exact one by at most (2^-9 for the
    query's rounding + 2^-9 for the output's + float32 accumulation) x |q| x |x| x inv < ``delta``. Any row of the
    exact top-k of these rows then screens above (k-th best screened cosine) - 2 delta, and any row that can still
    enter the running top-k (exact cosine >= its k-th, which only rises) screens above ``floor``; the rows above the
    higher of the two lines, for any query, are scored exactly, each by its own float32 dot product (the same bits
    whatever else is in the set). So every row of the final exact top-k among these rows is returned, with its exact
    cosine (fewer than k rows when the floor excludes the rest). Under a floor the chunk's own k-th best is only
    looked for (a top-k of the whole screen) when the floor alone leaves more than ``_MAX_CANDIDATES`` rows.
    """
    screen = out.copy_(torch.mm(qb, rows.T)).mul_(w)
    kk = min(k, rows.shape[0])
    cand = None if floor is None else (screen >= floor).any(0).nonzero()[:, 0]
    if cand is None or len(cand) > _MAX_CANDIDATES:
        line = screen.topk(kk, dim=1).values[:, -1:] - 2 * delta
        line = line if floor is None else torch.maximum(line, floor)
        cand = (screen >= line).any(0).nonzero()[:, 0]
    if not len(cand):  # nothing here can enter the running top-k
        return screen[:, :0], cand[None].expand(qm.shape[0], -1)
    exact = torch.cat([(rows[part].float()[None] * qm[:, None]).sum(-1) for part in cand.split(1024)], 1) * w[cand]
    return merge_topk(exact, cand[None].expand(qm.shape[0], -1), kk)


def merge_topk(sims: torch.Tensor, gids: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of candidate (cosine, global id) pairs [n, m], ties broken by the smaller global id; returns [n, k] each."""
    by_id = torch.sort(gids, dim=1, stable=True).indices
    s, g = sims.gather(1, by_id), gids.gather(1, by_id)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
    return s.gather(1, order), g.gather(1, order)


def _faiss():
    try:
        import faiss
    except ImportError:
        raise InterpError("backend='faiss' needs the faiss package: pip install faiss-cpu (or interp-workbench[faiss])") from None
    return faiss


def faiss_build(E: torch.Tensor, inv: torch.Tensor, spec: str):
    """A FAISS inner-product index from factory string ``spec`` ("Flat", "HNSW32", "IVF64,Flat", ...) over the
    unit vectors ``E * inv`` [rows, d]; IVF indexes with more lists than rows fall back to one list per 39 rows."""
    faiss = _faiss()
    x = (torch.as_tensor(E).float() * torch.as_tensor(inv)[:, None]).cpu().contiguous().numpy()
    try:
        fi = faiss.index_factory(x.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise InterpError(f"FAISS cannot build index {spec!r}: {str(e).splitlines()[0]}") from None
    if not fi.is_trained:
        fi.train(x)
    fi.add(x)
    return fi


def faiss_topk(fi, q: torch.Tensor, k: int, nprobe: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(cosine [n, k], row [n, k]) from FAISS index ``fi`` (``nprobe`` lists for IVF); rows FAISS could not fill
    get cosine -inf and row ``offset``; row ids start at ``offset``."""
    faiss = _faiss()
    if hasattr(fi, "nprobe"):
        fi.nprobe = nprobe
    else:
        try:
            faiss.extract_index_ivf(fi).nprobe = nprobe
        except RuntimeError:
            pass
    s, i = fi.search(q.cpu().numpy(), k)
    s, i = torch.from_numpy(s).float(), torch.from_numpy(i).long()
    missing = i < 0
    return s.masked_fill(missing, float("-inf")), i.clamp_min(0) + offset
