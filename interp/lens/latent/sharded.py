"""Search over a sharded LatentLens index without loading it: memory-mapped shards, exact streaming top-k merge.

``ShardedIndex(folder)`` (or ``LatentIndex.open(folder)``) checks the manifest and every shard header (names,
dtypes, shapes, row counts), each shard's bytes against the SHA-256 in the manifest on its first use, and then reads
vectors only while searching, one chunk of one shard at a time, so search memory is bounded by a chunk, not by the
index. Results equal those of the same index in one piece (same candidates, same merge rule). ``backend="faiss"``
builds one FAISS index per shard and layer, kept in memory and written to ``<folder>/faiss/`` (keyed by shard, layer,
index type and the shard's checksum, with its own SHA-256 beside it), so the next ``open`` reads it instead of
training it again (a damaged one is built again); a read-only folder keeps it in memory only.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path

import torch

from interp.errors import InterpError
from interp.io import atomic_write, atomic_write_text, check_sha256, sha256_file
from interp.lens.latent.base import IndexBase
from interp.lens.latent.files import check_file, dtype_from_name, memmap, read_json, verify
from interp.lens.latent.manifest import SHARDED_FORMAT, read_index_meta, shard_expect, shard_file
from interp.lens.latent.search import Neighbors, _faiss, check_k, check_queries, exact_topk_parts, faiss_build, faiss_topk, merge_topk

__all__ = ["ShardedIndex"]


class _Shard:
    """One checked shard file; tensors are memory maps opened on first use, after the file's bytes have been checked
    against the SHA-256 the manifest recorded (once, on the first use of the shard)."""

    def __init__(self, folder: Path, index: int, expect: dict, first_row: int, first_doc: int, meta: dict):
        self.folder, self.meta = folder, meta
        self.path, self.first_row, self.first_doc = shard_file(folder, index), first_row, first_doc
        self.header, self.start = check_file(self.path, expect)
        self.rows = expect["token_ids"][1][0]
        self._maps: dict[str, torch.Tensor] = {}
        self._verified = False

    def get(self, name: str) -> torch.Tensor:
        if not self._verified:
            verify(self.folder, self.meta, self.path.relative_to(self.folder).as_posix())
            self._verified = True
        if name not in self._maps:
            self._maps[name] = memmap(self.path, self.header, self.start, name)
        return self._maps[name]

    @cached_property
    def doc_starts(self) -> list[int]:
        """Where each document's tokens start in ``doc_tokens`` (one entry per document, plus the end)."""
        return [0, *torch.cumsum(self.get("doc_lengths").long(), 0).tolist()]


class ShardedIndex(IndexBase):
    """A sharded LatentLens index opened for search (see the module docstring).

    ``layers``, ``d_model``, ``dtype``, ``vocab``, ``model_name`` as in ``LatentIndex``; ``len()`` is the number of rows.
    """

    def __init__(self, path: str | Path):
        self.path = path = Path(path)
        meta = read_index_meta(path)
        if meta["format"] != SHARDED_FORMAT:
            raise InterpError(f"{path} is a one-piece index: load it with LatentIndex.load")
        planned, complete = meta["planned"], set(meta["complete"])
        missing = [i for i in range(len(planned)) if i not in complete]
        if missing:
            raise InterpError(f"{path} is incomplete: {len(complete)} of {len(planned)} shards are built; "
                              "run the same build again to finish it (it resumes)")
        self.meta = meta
        self.d_model, self.layers, self.n_layers = meta["d_model"], list(meta["layers"]), meta["n_layers"]
        self.dtype = dtype_from_name(meta["dtype"], path / "index.json")
        self.model_name, self.decoder, self.bos_id = meta["model"], meta["decoder_hash"], meta["bos_id"]
        self.max_per_token, self.min_pos, self.dedup = meta["max_per_token"], meta["min_pos"], meta["dedup"]
        self.vocab = read_json(path / "vocab.json", list)
        verify(path, meta, "vocab.json")
        self.shards: list[_Shard] = []
        row = doc = 0
        for i, p in enumerate(planned):
            try:
                n_rows, n_texts = int(p["rows"]), int(p["texts"])
            except (KeyError, TypeError, ValueError):
                raise InterpError(f"{path / 'index.json'}: shard {i}'s plan is damaged, rebuild the index") from None
            expect = shard_expect(self.layers, self.d_model, self.dtype, n_rows, n_texts)
            self.shards.append(_Shard(path, i, expect, row, doc, meta))
            row, doc = row + n_rows, doc + n_texts
        if row != meta["rows"] or doc != meta["texts"]:
            raise InterpError(f"{path / 'index.json'}: the shards add up to {row} rows and {doc} texts, the manifest says "
                              f"{meta['rows']} and {meta['texts']}: rebuild the index")
        self._n = row
        self._faiss: dict = {}

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (f"ShardedIndex({self._n:,} rows x layers {self.layers} in {len(self.shards)} shards, d_model {self.d_model}, "
                f"model {self.model_name!r}, {self.path})")

    @cached_property
    def _row_starts(self) -> torch.Tensor:
        return torch.tensor([s.first_row for s in self.shards])

    def _locate(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.searchsorted(self._row_starts, rows, right=True) - 1

    def _meta(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        flat = rows.reshape(-1).long()
        out = torch.zeros(3, len(flat), dtype=torch.int64)
        where = self._locate(flat)
        for si in where.unique().tolist():
            sel = where == si
            shard = self.shards[si]
            local = flat[sel] - shard.first_row
            for j, name in enumerate(("token_ids", "doc_ids", "positions")):
                out[j, sel] = shard.get(name)[local].long()
        return tuple(x.reshape(rows.shape) for x in out)

    def _doc(self, doc: int) -> list[int] | None:
        for shard in reversed(self.shards):
            if doc >= shard.first_doc:
                starts = shard.doc_starts
                local = doc - shard.first_doc
                if local >= len(starts) - 1:
                    return None
                return shard.get("doc_tokens")[starts[local] : starts[local + 1]].tolist()
        return None

    @torch.no_grad()
    def search(self, vectors: torch.Tensor, k: int = 5, layers: list[int] | None = None, *, backend: str = "torch",
               chunk: int = 65536, faiss_index: str = "Flat", nprobe: int = 16) -> Neighbors:
        """Top-k cosine neighbours of ``vectors`` [n, d_model] over the stored ``layers``, merged (as ``LatentIndex.search``).

        Exact: the shards' chunks are searched by a pool of threads, each folding what it reads into its running
        top-k (``exact_topk_parts``). FAISS: each shard's top-k per layer is folded into the running top-k.
        Returns ``Neighbors`` ([query, k]).
        """
        k = check_k(k)
        if backend not in ("torch", "faiss"):
            raise InterpError(f"unknown backend {backend!r}: use 'torch' or 'faiss'")
        q = check_queries(vectors, self.d_model, len(self))
        layer_list = self._layer_list(layers)
        k = min(k, len(self))
        if backend == "torch":  # every layer of every shard in one pool of tasks (exact_topk_parts)
            parts = [(shard.get(f"vectors.{layer}"), shard.get(f"inv_norms.{layer}"), li * len(self) + shard.first_row)
                     for li, layer in enumerate(layer_list) for shard in self.shards if shard.rows]
            return self._neighbors(*exact_topk_parts(q, parts, k, chunk), layer_list)
        best_s = best_g = None
        for li, layer in enumerate(layer_list):
            for si, shard in enumerate(self.shards):
                if shard.rows == 0:
                    continue
                E, inv = shard.get(f"vectors.{layer}"), shard.get(f"inv_norms.{layer}")
                key = (si, layer, faiss_index)
                if key not in self._faiss:
                    self._faiss[key] = self._faiss_index(si, layer, faiss_index, E, inv)
                s, i = faiss_topk(self._faiss[key], q, min(k, shard.rows), nprobe, offset=shard.first_row)
                g = i + li * len(self)
                if best_s is not None:
                    s, g = torch.cat([best_s, s], 1), torch.cat([best_g, g], 1)
                best_s, best_g = merge_topk(s, g, k)
        return self._neighbors(best_s, best_g, layer_list)

    def _faiss_index(self, si: int, layer: int, spec: str, E: torch.Tensor, inv: torch.Tensor):
        """The FAISS index of shard ``si`` and ``layer``: read from the folder's cache (named by the shard's checksum,
        checked against the SHA-256 written beside it), else built and cached."""
        faiss = _faiss()
        shard = self.shards[si]
        shard_sum = str((self.meta.get("sha256") or {}).get(shard.path.relative_to(self.path).as_posix(), ""))[:16]
        tag = hashlib.sha256(spec.encode()).hexdigest()[:12]
        file = self.path / "faiss" / f"shard{si}-layer{layer}-{tag}-{shard_sum}.faiss"
        record = file.with_name(file.name + ".sha256")
        if file.is_file():
            try:
                check_sha256(file, record.read_text().strip() if record.is_file() else None, "")
                fi = faiss.read_index(str(file))
                if fi.ntotal == shard.rows and fi.d == self.d_model:
                    return fi
            except (RuntimeError, InterpError, OSError):
                pass  # a damaged or unrecorded cache file: build the index again
        fi = faiss_build(E, inv, spec)
        try:
            file.parent.mkdir(exist_ok=True)
            atomic_write(file, lambda tmp: faiss.write_index(fi, str(tmp)))
            atomic_write_text(record, sha256_file(file) + "\n")  # after the file: a file without one is rebuilt
        except (OSError, InterpError):
            pass  # a read-only index folder: keep the FAISS index in memory only
        return fi
