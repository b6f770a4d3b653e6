"""The in-memory LatentLens index: building it from a corpus, searching it, saving and loading it.

``LatentIndex.build(model, texts)`` runs a corpus through the model and stores, for chosen layers, the
L2-normalised residual state of each kept corpus token. Rows are aligned across layers (row ``i`` is the
same document and position at every layer) and the metadata (token id, document id, position, the document's
tokens for context snippets) is stored once. Keep rules, decided once for all layers and in corpus order:
positions before ``min_pos`` are skipped (BOS and the first word carry atypical states), a token whose whole
prefix was seen before is skipped (a causal model gives it the same state), and at most ``max_per_token``
rows are kept per token id (first come, first served).

``LatentIndex.open(folder)`` opens a sharded index (``interp.scale``) without loading it (``ShardedIndex``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.io import atomic_write_dir
from interp.lens.data import decoder_hash, encode_texts, pad_batches
from interp.lens.latent.base import IndexBase
from interp.lens.latent.files import checksums, dtype_from_name, dtype_name, load_checked, read_json, verify
from interp.lens.latent.layers import default_layers, layer_hook, layer_states, prefix_hashes
from interp.lens.latent.manifest import read_index_meta
from interp.lens.latent.search import Neighbors, check_k, check_queries, exact_topk_parts, faiss_build, faiss_topk, merge_topk
from interp.lens.latent.sharded import ShardedIndex
from interp.models import model_name
from interp.validate import check_int, check_options

__all__ = ["LatentIndex", "FORMAT", "unit_vectors"]

FORMAT = "interp-latent-index-v1"
_SET_BY_EMPTY = ("d_model", "layers", "vocab", "model", "decoder", "n_layers", "bos_id")


def unit_vectors(h: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(unit vectors [n, d] in ``dtype`` on the CPU, float32 inverse norms [n] of the rounded vectors) of states ``h``.

    Normalised in float32, then rounded; the inverse norms make scores exact cosines of the stored vectors.
    """
    unit = F.normalize(h.detach().float(), dim=-1).to(dtype).cpu()
    return unit, 1.0 / unit.float().norm(dim=-1).clamp_min(1e-12)


class LatentIndex(IndexBase):
    """Contextual token states of a corpus at several layers, for cosine nearest-neighbour search.

    ``vectors[layer]``: [rows, d_model] unit vectors in ``dtype`` (fp16 by default); ``inv_norms[layer]``:
    [rows] float32 1/‖stored vector‖, so scores are exact cosines of the stored (rounded) vectors.
    ``token_ids``, ``doc_ids``, ``positions``: [rows] metadata, once for all layers.
    """

    def __init__(
        self, *, d_model: int, layers: list[int], vocab: list[str], dtype: torch.dtype = torch.float16,
        max_per_token: int | None = 20, min_pos: int = 2, dedup: bool = True, model: str = "", decoder: str = "",
        n_layers: int | None = None, bos_id: int | None = None,
    ):
        if not layers:
            raise InterpError("give at least one layer to store")
        check_int("min_pos", min_pos, minimum=0)  # a negative one would keep BOS and count from the end
        if max_per_token is not None:
            check_int("max_per_token", max_per_token, minimum=1)  # None: no cap; 0 or less would keep nothing
        self.d_model, self.layers, self.vocab, self.dtype = d_model, list(layers), vocab, dtype
        self.max_per_token, self.min_pos, self.dedup = max_per_token, min_pos, dedup
        self.model_name, self.decoder, self.n_layers, self.bos_id = model, decoder, n_layers, bos_id
        self.vectors = {layer: torch.empty(0, d_model, dtype=dtype) for layer in self.layers}
        self.inv_norms = {layer: torch.empty(0) for layer in self.layers}
        self.token_ids = torch.empty(0, dtype=torch.int32)
        self.doc_ids = torch.empty(0, dtype=torch.int32)
        self.positions = torch.empty(0, dtype=torch.int32)
        self.doc_tokens: list[torch.Tensor] = []
        self.counts = torch.zeros(max(1, len(vocab)), dtype=torch.int64)
        self.seen: set[int] = set()
        self._pending: dict[int, list[torch.Tensor]] = {layer: [] for layer in self.layers}
        self._meta_pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._faiss: dict = {}

    # ---- building ----------------------------------------------------------------------------
    @classmethod
    def empty(cls, model, *, layers: list[int] | None = None, **options) -> LatentIndex:
        """An empty index for ``model`` (fill it with ``add``). ``options``: dtype, max_per_token, min_pos, dedup (a
        misspelt or mistyped one raises ``InterpError``)."""
        check_options(cls.__init__, options, what="LatentIndex.empty()", exclude=_SET_BY_EMPTY)
        n = model.cfg.n_layers
        layers = default_layers(n) if layers is None else sorted(set(layers))
        for layer in layers:
            layer_hook(model, layer)  # range check
        tok = model.tokenizer
        vocab = [tok.decode([i]) for i in range(model.cfg.d_vocab)]
        return cls(d_model=model.cfg.d_model, layers=layers, vocab=vocab, model=model_name(model), decoder=decoder_hash(model),
                   n_layers=n, bos_id=tok.bos_token_id, **options)

    @classmethod
    def build(
        cls, model, texts: list[str], *, layers: list[int] | None = None, max_per_token: int | None = 20, min_pos: int = 2,
        dedup: bool = True, dtype: torch.dtype = torch.float16, batch_size: int = 16, path: str | Path | None = None,
        progress: bool = True,
    ) -> LatentIndex:
        """Encode ``texts`` with ``model`` and return the index (saved to folder ``path`` when given).

        ``layers``: model layers to store (default ``default_layers``). ``max_per_token``: cap of rows per token
        id (``None``: no cap). ``min_pos``: first position kept. ``dedup``: skip tokens whose prefix was seen.
        For corpora that do not fit one process, see ``interp.scale.build_index`` (sharded, resumable, Ray).
        """
        index = cls.empty(model, layers=layers, dtype=dtype, max_per_token=max_per_token, min_pos=min_pos, dedup=dedup)
        index.add(model, texts, batch_size=batch_size, progress=progress)
        if path is not None:
            index.save(path)
        return index

    @torch.no_grad()
    def add(self, model, texts: list[str], *, batch_size: int = 16, progress: bool = True) -> LatentIndex:
        """Encode another corpus shard and append its kept rows (same keep rules, continuing the counts); returns self."""
        self._check_model(model, strict=True)
        seqs = encode_texts(model, texts)
        first_doc = len(self.doc_tokens)
        bar = tqdm(total=len(seqs), desc="latent index", unit="text", disable=not progress)
        try:
            for idx, ids, mask in pad_batches(seqs, batch_size):
                keep = self.select(ids, mask)
                self.doc_tokens.extend(seqs[i].to(torch.int32) for i in idx)  # before the rows that point at them
                if keep.any():
                    dev_keep = keep.to(model.cfg.device)
                    states = {layer: h[dev_keep] for layer, h in layer_states(model, ids, self.layers).items()}
                    docs = (torch.tensor(idx, dtype=torch.int32) + first_doc)[:, None].expand_as(ids)[keep]
                    pos = torch.arange(ids.shape[1], dtype=torch.int32)[None].expand_as(ids)[keep]
                    self.add_vectors(states, ids[keep], docs, pos)
                bar.update(len(idx))
        finally:
            bar.close()
            self._consolidate()
        return self

    def select(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[batch, pos] keep-mask of padded ids [batch, pos] (``mask`` True on real tokens), in corpus order (row by
        row, position by position); updates the seen prefixes and per-token counts. Also the sharded builder's planner."""
        cand = mask.clone()
        cand[:, : self.min_pos] = False
        flat = cand.reshape(-1).nonzero().squeeze(-1)
        if flat.numel() == 0:
            return cand
        ok = torch.ones(flat.numel(), dtype=torch.bool)
        if self.dedup:
            hashes = prefix_hashes(ids).reshape(-1)[flat].tolist()
            seen = self.seen
            fresh = []
            for h in hashes:  # a set lookup per candidate: sequential semantics (first occurrence wins)
                fresh.append(h not in seen)
                seen.add(h)
            ok = torch.tensor(fresh, dtype=torch.bool)
        if self.max_per_token is not None:
            tok = ids.reshape(-1)[flat].long()
            sel = ok.nonzero().squeeze(-1)
            t = tok[sel]
            order = torch.sort(t, stable=True).indices  # occurrence number of each token within this batch
            ts = t[order]
            group_start = torch.searchsorted(ts, ts, right=False)
            occ = torch.empty_like(order)
            occ[order] = torch.arange(len(ts)) - group_start
            under = self.counts[t] + occ < self.max_per_token
            ok[sel[~under]] = False
            self.counts.index_add_(0, t[under], torch.ones(int(under.sum()), dtype=torch.int64))
        keep = torch.zeros(cand.numel(), dtype=torch.bool)
        keep[flat[ok]] = True
        return keep.reshape(cand.shape)

    _select = select  # the old private name

    def add_vectors(self, states: dict[int, torch.Tensor], token_ids: torch.Tensor, doc_ids: torch.Tensor | None = None,
                    positions: torch.Tensor | None = None) -> None:
        """Append raw states ``states[layer]`` [n, d_model] (one entry per stored layer, rows aligned) and their metadata.

        Vectors are L2-normalised in float32 first and then rounded to the index dtype. Also the way to index
        vectors that do not come from a corpus (benchmarks, other encoders).
        """
        n = len(token_ids)
        if set(states) != set(self.layers):
            raise InterpError(f"give states for exactly the stored layers {self.layers}, got {sorted(states)}")
        for layer, h in states.items():
            if h.shape != (n, self.d_model):
                raise InterpError(f"states[{layer}] has shape {tuple(h.shape)}, expected [{n}, {self.d_model}]")
            self._pending[layer].append(F.normalize(h.detach().float(), dim=-1).to(self.dtype).cpu())
        zeros = torch.zeros(n, dtype=torch.int32)
        self._meta_pending.append((token_ids.to(torch.int32).cpu(), (zeros - 1 if doc_ids is None else doc_ids.to(torch.int32).cpu()),
                                   (zeros if positions is None else positions.to(torch.int32).cpu())))

    def _consolidate(self) -> None:
        if not self._meta_pending:
            return
        for layer in self.layers:
            new = torch.cat(self._pending[layer])
            self.vectors[layer] = torch.cat([self.vectors[layer], new])
            self.inv_norms[layer] = torch.cat([self.inv_norms[layer], 1.0 / new.float().norm(dim=-1).clamp_min(1e-12)])
            self._pending[layer] = []
        tok, doc, pos = zip(*self._meta_pending)
        self.token_ids = torch.cat([self.token_ids, *tok])
        self.doc_ids = torch.cat([self.doc_ids, *doc])
        self.positions = torch.cat([self.positions, *pos])
        self._meta_pending = []
        self._faiss.clear()

    @classmethod
    def from_vectors(cls, states: dict[int, torch.Tensor], *, dtype: torch.dtype = torch.float16, token_ids: torch.Tensor | None = None,
                     vocab: list[str] | None = None) -> LatentIndex:
        """An index over arbitrary vectors ``states[layer]`` [n, d] (no model, no corpus); token ids default to 0."""
        layers = sorted(states)
        n, d = states[layers[0]].shape
        index = cls(d_model=d, layers=layers, vocab=vocab or ["?"], dtype=dtype, max_per_token=None, min_pos=0)
        index.add_vectors(states, torch.zeros(n, dtype=torch.int32) if token_ids is None else token_ids)
        index._consolidate()
        return index

    # ---- facts -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.token_ids)

    def bytes_per_vector(self) -> float:
        """Stored bytes per row and layer: the vector, its inverse norm, and the row metadata shared by all layers."""
        item = torch.empty(0, dtype=self.dtype).element_size()
        return self.d_model * item + 4 + 12 / len(self.layers)

    def __repr__(self) -> str:
        return (f"LatentIndex({len(self):,} rows x layers {self.layers}, d_model {self.d_model}, {dtype_name(self.dtype)}, "
                f"{len(self.doc_tokens):,} texts, model {self.model_name!r})")

    def _meta(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.token_ids[rows].long(), self.doc_ids[rows].long(), self.positions[rows].long()

    def _doc(self, doc: int) -> list[int] | None:
        return self.doc_tokens[doc].tolist() if 0 <= doc < len(self.doc_tokens) else None

    # ---- search ------------------------------------------------------------------------------
    def to(self, device: str | torch.device) -> LatentIndex:
        """Move the stored vectors to ``device`` (search then runs there); returns self."""
        for layer in self.layers:
            self.vectors[layer] = self.vectors[layer].to(device)
            self.inv_norms[layer] = self.inv_norms[layer].to(device)
        return self

    def _queries(self, vectors: torch.Tensor) -> torch.Tensor:
        return check_queries(vectors, self.d_model, len(self))

    @torch.no_grad()
    def search(self, vectors: torch.Tensor, k: int = 5, layers: list[int] | None = None, *, backend: str = "torch",
               chunk: int = 65536, faiss_index: str = "Flat", nprobe: int = 16) -> Neighbors:
        """Top-k cosine neighbours of ``vectors`` [n, d_model] (or [d_model]) over the stored ``layers`` (default all), merged.

        Queries are L2-normalised, so scaling a query changes nothing; a NaN / inf query is an ``InterpError``. Each
        layer gives its top-k; the union is merged by cosine, ties broken by (layer order, row). ``backend="faiss"``
        searches each layer with a FAISS index built from ``faiss_index`` ("Flat" exact, "HNSW32", "IVF1024,Flat", ...).
        Returns ``Neighbors`` ([query, k]).
        """
        k = check_k(k)
        if backend not in ("torch", "faiss"):
            raise InterpError(f"unknown backend {backend!r}: use 'torch' or 'faiss'")
        q = self._queries(vectors)
        layer_list = self._layer_list(layers)
        k = min(k, len(self))
        if backend == "torch":
            parts = [(self.vectors[layer], self.inv_norms[layer], li * len(self)) for li, layer in enumerate(layer_list)]
            s, g = exact_topk_parts(q, parts, k, chunk)
            return self._neighbors(s.float().cpu(), g.cpu(), layer_list)
        all_s, all_g = [], []
        for li, layer in enumerate(layer_list):
            key = (layer, faiss_index)
            if key not in self._faiss:
                self._faiss[key] = faiss_build(self.vectors[layer], self.inv_norms[layer], faiss_index)
            s, i = faiss_topk(self._faiss[key], q, k, nprobe)
            all_s.append(s.float().cpu())
            all_g.append(i.cpu() + li * len(self))
        return self._neighbors(*merge_topk(torch.cat(all_s, 1), torch.cat(all_g, 1), k), layer_list)

    @torch.no_grad()
    def brute_force(self, vectors: torch.Tensor, k: int = 5, layers: list[int] | None = None) -> Neighbors:
        """Reference search: one matmul against all stored layers concatenated, then one top-k (same tie rule)."""
        k = check_k(k)
        q = self._queries(vectors)
        layer_list = self._layer_list(layers)
        E = torch.cat([self.vectors[x].float().cpu() * self.inv_norms[x].cpu()[:, None] for x in layer_list])
        sims = q @ E.T
        order = torch.sort(sims, dim=1, descending=True, stable=True).indices[:, : min(k, E.shape[0])]
        return self._neighbors(sims.gather(1, order), order, layer_list)

    # ---- files -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the index to folder ``path`` atomically (a temporary sibling renamed into place); returns the path.

        ``index.json`` (settings and every other file's SHA-256), ``rows.safetensors`` (metadata, corpus tokens, keep
        state), ``layer_{l}.safetensors``, ``vocab.json``.
        """
        self._consolidate()

        def write(tmp: Path) -> None:
            import json

            lengths = torch.tensor([len(d) for d in self.doc_tokens], dtype=torch.int64)
            flat = torch.cat(self.doc_tokens) if self.doc_tokens else torch.empty(0, dtype=torch.int32)
            seen = torch.tensor(sorted(self.seen), dtype=torch.int64)
            save_file({"token_ids": self.token_ids, "doc_ids": self.doc_ids, "positions": self.positions, "doc_lengths": lengths,
                       "doc_tokens": flat.to(torch.int32), "counts": self.counts, "seen": seen}, str(tmp / "rows.safetensors"))
            for layer in self.layers:
                save_file({"vectors": self.vectors[layer].cpu().contiguous(), "inv_norms": self.inv_norms[layer].cpu().contiguous()},
                          str(tmp / f"layer_{layer}.safetensors"))
            meta = dict(format=FORMAT, model=self.model_name, decoder_hash=self.decoder, d_model=self.d_model, layers=self.layers,
                        n_layers=self.n_layers, dtype=dtype_name(self.dtype), max_per_token=self.max_per_token,
                        min_pos=self.min_pos, dedup=self.dedup, bos_id=self.bos_id, rows=len(self), texts=len(self.doc_tokens))
            (tmp / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False))
            names = ["rows.safetensors", *(f"layer_{layer}.safetensors" for layer in self.layers), "vocab.json"]
            meta["sha256"] = checksums(tmp, names)
            (tmp / "index.json").write_text(json.dumps(meta, indent=2) + "\n")  # last: it vouches for the others

        return atomic_write_dir(Path(path), write)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> LatentIndex:
        """Read an index folder written by ``save`` (vectors onto ``device``, default CPU).

        Every file is checked against ``index.json`` first (tensor names, dtypes, shapes, row counts; the dtype from an
        allow-list), then against the SHA-256 it recorded; a damaged or tampered folder raises one ``InterpError`` naming
        the file. A sharded folder
        (``interp.scale``) is loaded whole; ``LatentIndex.open`` searches it without loading.
        """
        path = Path(path)
        meta = read_index_meta(path)
        if meta.get("format") != FORMAT:
            return cls._from_sharded(ShardedIndex(path), device)
        n, d, n_texts = meta["rows"], meta["d_model"], meta["texts"]
        dtype = dtype_from_name(meta["dtype"], path / "index.json")
        vocab = read_json(path / "vocab.json", list)
        verify(path, meta, "vocab.json")
        index = cls(d_model=d, layers=meta["layers"], vocab=vocab, dtype=dtype, max_per_token=meta["max_per_token"],
                    min_pos=meta["min_pos"], dedup=meta["dedup"], model=meta["model"], decoder=meta["decoder_hash"],
                    n_layers=meta["n_layers"], bos_id=meta["bos_id"])
        rows_file = path / "rows.safetensors"
        i32, i64 = torch.int32, torch.int64
        rows = load_checked(rows_file, {"token_ids": (i32, (n,)), "doc_ids": (i32, (n,)), "positions": (i32, (n,)),
                                        "doc_lengths": (i64, (n_texts,)), "doc_tokens": (i32, None), "counts": (i64, None),
                                        "seen": (i64, None)})
        verify(path, meta, "rows.safetensors")
        lengths = rows["doc_lengths"]
        if int(lengths.sum()) != len(rows["doc_tokens"]) or (lengths < 0).any():
            raise InterpError(f"{rows_file}: the document lengths do not add up to the stored tokens: rebuild the index")
        if n and (int(rows["doc_ids"].max()) >= n_texts or int(rows["token_ids"].max()) >= len(vocab) or int(rows["token_ids"].min()) < 0):
            raise InterpError(f"{rows_file}: rows point at documents or tokens that are not stored: rebuild the index")
        index.token_ids, index.doc_ids, index.positions = rows["token_ids"], rows["doc_ids"], rows["positions"]
        index.doc_tokens = list(torch.split(rows["doc_tokens"], lengths.tolist())) if n_texts else []
        index.counts, index.seen = rows["counts"], set(rows["seen"].tolist())
        for layer in index.layers:
            t = load_checked(path / f"layer_{layer}.safetensors", {"vectors": (dtype, (n, d)), "inv_norms": (torch.float32, (n,))})
            verify(path, meta, f"layer_{layer}.safetensors")
            index.vectors[layer], index.inv_norms[layer] = t["vectors"], t["inv_norms"]
        return index.to(device) if device is not None else index

    @classmethod
    def open(cls, path: str | Path):
        """Open an index folder for search without loading it: a sharded folder gives a ``ShardedIndex`` (memory-mapped
        shards, exact streaming top-k, FAISS per shard); a one-piece folder gives the loaded ``LatentIndex``."""
        path = Path(path)
        if read_index_meta(path).get("format") == FORMAT:
            return cls.load(path)
        return ShardedIndex(path)

    @classmethod
    def _from_sharded(cls, sharded: ShardedIndex, device: str | torch.device | None = None) -> LatentIndex:
        """The whole sharded index in memory (keep state included, so ``add`` continues the keep rules)."""
        index = cls(d_model=sharded.d_model, layers=sharded.layers, vocab=sharded.vocab, dtype=sharded.dtype,
                    max_per_token=sharded.max_per_token, min_pos=sharded.min_pos, dedup=sharded.dedup, model=sharded.model_name,
                    decoder=sharded.decoder, n_layers=sharded.n_layers, bos_id=sharded.bos_id)
        cat = lambda name: torch.cat([s.get(name).clone() for s in sharded.shards])
        for layer in sharded.layers:
            index.vectors[layer], index.inv_norms[layer] = cat(f"vectors.{layer}"), cat(f"inv_norms.{layer}")
        index.token_ids, index.doc_ids, index.positions = cat("token_ids"), cat("doc_ids"), cat("positions")
        for s in sharded.shards:
            index.doc_tokens.extend(torch.split(s.get("doc_tokens").clone(), s.get("doc_lengths").tolist()))
        state = load_checked(sharded.path / "keep_state.safetensors", {"counts": (torch.int64, None), "seen": (torch.int64, None)})
        verify(sharded.path, sharded.meta, "keep_state.safetensors")
        index.counts, index.seen = state["counts"], set(state["seen"].tolist())
        return index.to(device) if device is not None else index
