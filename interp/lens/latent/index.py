"""LatentLens: describe a hidden state by its nearest contextual token states from a text corpus.

``LatentIndex.build(model, texts)`` runs a corpus through the model and stores, for chosen layers, the
L2-normalised residual state of each kept corpus token. Rows are aligned across layers (row ``i`` is the
same document and position at every layer) and the metadata (token id, document id, position, the document's
tokens for context snippets) is stored once. Keep rules, decided once for all layers and in corpus order:
positions before ``min_pos`` are skipped (BOS and the first word carry atypical states), a token whose whole
prefix was seen before is skipped (a causal model gives it the same state), and at most ``max_per_token``
rows are kept per token id (first come, first served).

``index.search(vectors, k)`` returns the top-k cosine neighbours of any vectors over every stored layer,
merged by cosine (each hit says which layer it came from): exact chunked matmul by default, or FAISS
(``backend="faiss"``) with any index factory string. ``latent_lens(model, prompt, index, layer=...)``
describes each position of a prompt at model layers.

Layer numbering follows Hugging Face ``hidden_states``: layer ``l < n_layers`` is ``blocks.{l}.hook_resid_pre``
(the output of block ``l - 1``) and layer ``n_layers`` is ``blocks.{n_layers-1}.hook_resid_post`` (before
the final norm).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.io import atomic_write_dir
from interp.lens.data import decoder_hash, encode_texts, pad_batches
from interp.models import model_name, str_tokens, to_tokens
from interp.results import Result

__all__ = ["LatentIndex", "Neighbors", "LatentLensResult", "latent_lens", "default_layers", "layer_hook", "layer_label",
           "layer_states"]

_FORMAT = "interp-latent-index-v1"
_HASH_MUL = 0x100000001B3  # FNV-64 prime; int64 products wrap, which is what a hash wants


def default_layers(n_layers: int) -> list[int]:
    """LatentLens' stored layers: {1, 2, 4, 8, 16, 24, n-2, n-1} within 1..n-1 (``[n_layers]`` for a 1-layer model)."""
    layers = sorted({x for x in (1, 2, 4, 8, 16, 24, n_layers - 2, n_layers - 1) if 1 <= x < n_layers})
    return layers or [n_layers]


def layer_hook(model, layer: int) -> str:
    """Hook name of model layer ``layer`` in 0..n_layers (see the module docstring): ``blocks.0.hook_resid_pre`` for 0,
    else ``blocks.{layer-1}.hook_resid_post`` (the same tensor as ``blocks.{layer}.hook_resid_pre``)."""
    n = model.cfg.n_layers
    if not 0 <= layer <= n:
        raise InterpError(f"layer {layer} is out of range: this model has layers 0..{n} (0 = embeddings, {n} = last block's output)")
    return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_resid_post"


@torch.no_grad()
def layer_states(model, ids: torch.Tensor, layers: list[int]) -> dict[int, torch.Tensor]:
    """Residual states {layer: [batch, pos, d_model]} of ids [batch, pos]; blocks above the highest layer are not run."""
    names = {layer: layer_hook(model, layer) for layer in layers}
    want = set(names.values())
    top = max(layers)
    stop = max(1, top) if top < model.cfg.n_layers else None
    _, cache = model.run_with_cache(ids.to(model.cfg.device), names_filter=lambda n: n in want, stop_at_layer=stop)
    return {layer: cache[name] for layer, name in names.items()}


def layer_label(layer: int, n_layers: int) -> str:
    """The logit-lens row label of a model layer: "3_pre" or "final_post"."""
    return f"{layer}_pre" if layer < n_layers else "final_post"


def prefix_hashes(ids: torch.Tensor) -> torch.Tensor:
    """[batch, pos] int64 hash of each prefix ``ids[b, :pos+1]`` (polynomial, wrapping), equal for equal prefixes."""
    h = torch.empty_like(ids, dtype=torch.int64)
    acc = torch.zeros(ids.shape[0], dtype=torch.int64)
    for t in range(ids.shape[1]):  # a loop over positions, vectorised over the batch
        acc = acc * _HASH_MUL + ids[:, t].long() + 1
        h[:, t] = acc
    return h


@dataclass(frozen=True)
class Neighbors(Result):
    """Top-k corpus neighbours of each query vector, merged over the searched layers (best first).

    ``sims``: [query, k] cosine similarities. ``rows``: [query, k] row ids in the index.
    ``layers``: [query, k] the model layer each neighbour was stored from. ``token_ids``: [query, k].
    ``tokens`` / ``snippets``: [query][k] token strings and their corpus contexts (the token in ⟨ ⟩).
    """

    sims: torch.Tensor
    rows: torch.Tensor
    layers: torch.Tensor
    token_ids: torch.Tensor
    tokens: list
    snippets: list
    _shapes = {"sims": "query k", "rows": "query k", "layers": "query k", "token_ids": "query k"}


@dataclass(frozen=True)
class LatentLensResult(Result):
    """LatentLens readout of a prompt: [layer, pos, k] neighbours of each position's state at each model layer.

    ``tokens``: the prompt's token strings. ``layers``: the model layers queried, ``labels`` their lens-row names.
    ``sims``, ``rows``, ``source_layers`` (the stored layer each neighbour came from): [layer, pos, k].
    ``neighbours`` / ``snippets``: [layer][pos][k] neighbour token strings and their contexts.
    """

    model: str
    tokens: list[str]
    layers: list[int]
    labels: list[str]
    sims: torch.Tensor
    rows: torch.Tensor
    source_layers: torch.Tensor
    neighbours: list
    snippets: list
    _shapes = {"sims": "layer pos k", "rows": "layer pos k", "source_layers": "layer pos k"}


class LatentIndex:
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
        """An empty index for ``model`` (fill it with ``add``). ``options``: dtype, max_per_token, min_pos, dedup."""
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
                keep = self._select(ids, mask)
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

    def _select(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[batch, pos] keep-mask in corpus order; updates the seen prefixes and per-token counts."""
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
            unit = F.normalize(h.detach().float(), dim=-1).to(self.dtype).cpu()
            self._pending[layer].append(unit)
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
        return (f"LatentIndex({len(self):,} rows x layers {self.layers}, d_model {self.d_model}, {str(self.dtype).replace('torch.', '')}, "
                f"{len(self.doc_tokens):,} texts, model {self.model_name!r})")

    def _check_model(self, model, strict: bool) -> None:
        if model.cfg.d_model != self.d_model:
            raise InterpError(f"the index stores d_model {self.d_model} vectors but {model_name(model)!r} has d_model {model.cfg.d_model}")
        if strict and self.decoder and decoder_hash(model) != self.decoder:
            raise InterpError(
                f"this index was built with {self.model_name!r}; {model_name(model)!r} has other weights: "
                "build a new index for it (LatentIndex.build)")

    def context(self, row: int, before: int = 8, after: int = 4) -> tuple[str, str, str]:
        """(left context, token, right context) strings of stored row ``row`` in its corpus text."""
        doc, pos = int(self.doc_ids[row]), int(self.positions[row])
        tok = self.vocab[int(self.token_ids[row])] if int(self.token_ids[row]) < len(self.vocab) else "?"
        if doc < 0 or doc >= len(self.doc_tokens):
            return "", tok, ""
        ids = self.doc_tokens[doc].tolist()
        piece = lambda xs: "".join(self.vocab[i] for i in xs if i != self.bos_id and i < len(self.vocab))
        left = piece(ids[max(0, pos - before) : pos])
        right = piece(ids[pos + 1 : pos + 1 + after]) + ("…" if pos + 1 + after < len(ids) else "")
        return ("…" if pos - before > 0 else "") + left, tok, right

    def snippet(self, row: int, before: int = 8, after: int = 4) -> str:
        """The context of row ``row`` as one string with the token in ⟨ ⟩."""
        left, tok, right = self.context(row, before, after)
        return f"{left}⟨{tok}⟩{right}"

    # ---- search ------------------------------------------------------------------------------
    def to(self, device: str | torch.device) -> LatentIndex:
        """Move the stored vectors to ``device`` (search then runs there); returns self."""
        for layer in self.layers:
            self.vectors[layer] = self.vectors[layer].to(device)
            self.inv_norms[layer] = self.inv_norms[layer].to(device)
        return self

    def _layer_list(self, layers: list[int] | None) -> list[int]:
        if layers is None:
            return self.layers
        bad = [x for x in layers if x not in self.layers]
        if bad:
            raise InterpError(f"layers {bad} are not stored in this index; it stores {self.layers}")
        return list(layers)

    def _queries(self, vectors: torch.Tensor) -> torch.Tensor:
        q = torch.as_tensor(vectors).detach().float()
        if q.ndim == 1:
            q = q[None]
        if q.ndim != 2 or q.shape[1] != self.d_model:
            raise InterpError(f"query vectors must have shape [n, {self.d_model}], got {tuple(q.shape)}")
        if len(self) == 0:
            raise InterpError("the index is empty: build it from a corpus first")
        return F.normalize(q, dim=-1)

    def _layer_topk(self, q: torch.Tensor, layer: int, k: int, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact top-k (cosine, row) of unit queries ``q`` [n, d] against one stored layer, folded chunk by chunk."""
        E, inv = self.vectors[layer], self.inv_norms[layer]
        q = q.to(E.device)
        mm_dtype = E.dtype if E.device.type == "cuda" else torch.float32
        best_s = best_i = None
        for start in range(0, E.shape[0], chunk):
            block = E[start : start + chunk]
            sims = (q.to(mm_dtype) @ block.to(mm_dtype).T).float() * inv[start : start + chunk]
            s, i = sims.topk(min(k, sims.shape[1]), dim=1)
            i = i + start
            if best_s is not None:
                s, j = torch.cat([best_s, s], 1), torch.cat([best_i, i], 1)
                s, pick = s.topk(min(k, s.shape[1]), dim=1)
                i = j.gather(1, pick)
            best_s, best_i = s, i
        return best_s, best_i

    def _faiss_topk(self, q: torch.Tensor, layer: int, k: int, spec: str, nprobe: int) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            import faiss
        except ImportError:
            raise InterpError("backend='faiss' needs the faiss package: pip install faiss-cpu (or interp-workbench[faiss])") from None
        key = (layer, spec)
        if key not in self._faiss:
            x = (self.vectors[layer].float() * self.inv_norms[layer][:, None]).cpu().numpy()
            fi = faiss.index_factory(self.d_model, spec, faiss.METRIC_INNER_PRODUCT)
            if not fi.is_trained:
                fi.train(x)
            fi.add(x)
            self._faiss[key] = fi
        fi = self._faiss[key]
        if hasattr(fi, "nprobe"):
            fi.nprobe = nprobe
        else:
            try:
                faiss.extract_index_ivf(fi).nprobe = nprobe
            except RuntimeError:
                pass
        s, i = fi.search(q.cpu().numpy(), k)
        return torch.from_numpy(s), torch.from_numpy(i).long()

    @torch.no_grad()
    def search(self, vectors: torch.Tensor, k: int = 5, layers: list[int] | None = None, *, backend: str = "torch",
               chunk: int = 65536, faiss_index: str = "Flat", nprobe: int = 16) -> Neighbors:
        """Top-k cosine neighbours of ``vectors`` [n, d_model] (or [d_model]) over the stored ``layers`` (default all), merged.

        Queries are L2-normalised, so scaling a query changes nothing. Each layer gives its top-k; the union is
        merged by cosine, ties broken by (layer order, row). ``backend="faiss"`` searches each layer with a FAISS
        index built from ``faiss_index`` (a factory string: "Flat" exact, "HNSW32", "IVF1024,Flat", ...).
        """
        if k < 1:
            raise InterpError(f"k must be at least 1, got {k}")
        q = self._queries(vectors)
        layer_list = self._layer_list(layers)
        k = min(k, len(self))
        all_s, all_g = [], []
        for li, layer in enumerate(layer_list):
            if backend == "torch":
                s, i = self._layer_topk(q, layer, k, chunk)
            elif backend == "faiss":
                s, i = self._faiss_topk(q, layer, k, faiss_index, nprobe)
            else:
                raise InterpError(f"unknown backend {backend!r}: use 'torch' or 'faiss'")
            all_s.append(s.float().cpu())
            all_g.append(i.cpu() + li * len(self))
        return self._neighbors(*_merge(torch.cat(all_s, 1), torch.cat(all_g, 1), k), layer_list)

    @torch.no_grad()
    def brute_force(self, vectors: torch.Tensor, k: int = 5, layers: list[int] | None = None) -> Neighbors:
        """Reference search: one matmul against all stored layers concatenated, then one top-k (same tie rule)."""
        q = self._queries(vectors)
        layer_list = self._layer_list(layers)
        E = torch.cat([self.vectors[x].float().cpu() * self.inv_norms[x].cpu()[:, None] for x in layer_list])
        sims = q @ E.T
        order = torch.sort(sims, dim=1, descending=True, stable=True).indices[:, : min(k, E.shape[0])]
        return self._neighbors(sims.gather(1, order), order, layer_list)

    def _neighbors(self, sims: torch.Tensor, gids: torch.Tensor, layer_list: list[int]) -> Neighbors:
        n = len(self)
        rows, li = gids % n, gids // n
        lay = torch.tensor(layer_list)[li]
        tok = self.token_ids[rows].long()
        flat_rows = rows.tolist()
        tokens = [[self.vocab[t] if t < len(self.vocab) else "?" for t in r] for r in tok.tolist()]
        snippets = [[self.snippet(r) for r in rr] for rr in flat_rows]
        return Neighbors(sims=sims, rows=rows, layers=lay, token_ids=tok, tokens=tokens, snippets=snippets)

    # ---- files -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the index to folder ``path`` atomically (a temporary sibling renamed into place); returns the path.

        ``index.json`` (settings), ``rows.safetensors`` (metadata, corpus tokens, keep state), ``layer_{l}.safetensors``.
        """
        self._consolidate()
        path = Path(path)

        def write(tmp: Path) -> None:
            lengths = torch.tensor([len(d) for d in self.doc_tokens], dtype=torch.int64)
            flat = torch.cat(self.doc_tokens) if self.doc_tokens else torch.empty(0, dtype=torch.int32)
            seen = torch.tensor(sorted(self.seen), dtype=torch.int64)
            save_file({"token_ids": self.token_ids, "doc_ids": self.doc_ids, "positions": self.positions, "doc_lengths": lengths,
                       "doc_tokens": flat.to(torch.int32), "counts": self.counts, "seen": seen}, str(tmp / "rows.safetensors"))
            for layer in self.layers:
                save_file({"vectors": self.vectors[layer].cpu().contiguous(), "inv_norms": self.inv_norms[layer].cpu().contiguous()},
                          str(tmp / f"layer_{layer}.safetensors"))
            meta = dict(format=_FORMAT, model=self.model_name, decoder_hash=self.decoder, d_model=self.d_model, layers=self.layers,
                        n_layers=self.n_layers, dtype=str(self.dtype).replace("torch.", ""), max_per_token=self.max_per_token,
                        min_pos=self.min_pos, dedup=self.dedup, bos_id=self.bos_id, rows=len(self), texts=len(self.doc_tokens))
            (tmp / "index.json").write_text(json.dumps(meta, indent=2) + "\n")
            (tmp / "vocab.json").write_text(json.dumps(self.vocab, ensure_ascii=False))

        atomic_write_dir(path, write)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> LatentIndex:
        """Read an index folder written by ``save`` (vectors onto ``device``, default CPU)."""
        path = Path(path)
        if not (path / "index.json").is_file():
            raise InterpError(f"{path} is not a LatentLens index folder (no index.json)")
        meta = json.loads((path / "index.json").read_text())
        if meta.get("format") != _FORMAT:
            raise InterpError(f"{path}/index.json is not an interp LatentLens index")
        index = cls(d_model=meta["d_model"], layers=meta["layers"], vocab=json.loads((path / "vocab.json").read_text()),
                    dtype=getattr(torch, meta["dtype"]), max_per_token=meta["max_per_token"], min_pos=meta["min_pos"],
                    dedup=meta["dedup"], model=meta["model"], decoder=meta["decoder_hash"], n_layers=meta["n_layers"],
                    bos_id=meta["bos_id"])
        rows = load_file(str(path / "rows.safetensors"))
        index.token_ids, index.doc_ids, index.positions = rows["token_ids"], rows["doc_ids"], rows["positions"]
        index.doc_tokens = list(torch.split(rows["doc_tokens"], rows["doc_lengths"].tolist())) if len(rows["doc_lengths"]) else []
        index.counts, index.seen = rows["counts"], set(rows["seen"].tolist())
        for layer in index.layers:
            t = load_file(str(path / f"layer_{layer}.safetensors"))
            index.vectors[layer], index.inv_norms[layer] = t["vectors"], t["inv_norms"]
        return index.to(device) if device is not None else index


def _merge(sims: torch.Tensor, gids: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of candidate (cosine, global id) pairs [n, m], ties broken by the smaller global id."""
    by_id = torch.sort(gids, dim=1, stable=True).indices
    s, g = sims.gather(1, by_id), gids.gather(1, by_id)
    order = torch.sort(s, dim=1, descending=True, stable=True).indices[:, :k]
    return s.gather(1, order), g.gather(1, order)


@torch.no_grad()
def latent_lens(model, prompt: str | torch.Tensor, index: LatentIndex, *, layer: int | list[int] | None = None, k: int = 5,
                search_layers: list[int] | None = None, allow_other_model: bool = False) -> LatentLensResult:
    """Describe each position of ``prompt`` at model ``layer`` (an int, a list, or ``None`` for 0..n_layers)
    by its top-``k`` LatentLens neighbours over the index's stored layers (or ``search_layers``).

    Returns a ``LatentLensResult`` ([layer, pos, k]). The index must come from the same model unless
    ``allow_other_model`` (then only d_model must match).
    """
    index._check_model(model, strict=not allow_other_model)
    n = model.cfg.n_layers
    layers = list(range(n + 1)) if layer is None else ([layer] if isinstance(layer, int) else list(layer))
    for x in layers:
        layer_hook(model, x)  # range check
    tokens = to_tokens(model, prompt) if isinstance(prompt, str) else prompt.reshape(1, -1).to(model.cfg.device)
    states = layer_states(model, tokens, layers)
    q = torch.cat([states[x][0] for x in layers])  # [layer * pos, d]
    nb = index.search(q, k, search_layers)
    n_l, n_p = len(layers), tokens.shape[1]
    kk = nb.sims.shape[1]
    fold = lambda xs: [xs[i * n_p : (i + 1) * n_p] for i in range(n_l)]
    return LatentLensResult(
        model=model_name(model), tokens=str_tokens(model, tokens), layers=layers, labels=[layer_label(x, n) for x in layers],
        sims=nb.sims.reshape(n_l, n_p, kk), rows=nb.rows.reshape(n_l, n_p, kk), source_layers=nb.layers.reshape(n_l, n_p, kk),
        neighbours=fold(nb.tokens), snippets=fold(nb.snippets),
    )
