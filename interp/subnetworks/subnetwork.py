"""``Subnetwork``: binary keep-masks over a model's maskable weight matrices, with save/load and controls.

A subnetwork keeps weight entry ``(i, j)`` of matrix ``W`` when ``masks[name][i, j]`` is True; running the
model "with the subnetwork only" uses ``W * keep`` for every maskable matrix (embeddings, unembedding,
norms and biases are always kept). Context managers run the model with the subnetwork only, with it
ablated (``W * ~keep``), or with a random subnetwork of the same size in every matrix (and its complement).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from interp.errors import InterpError
from interp.models import model_name
from interp.results import FileEntries, Result
from interp.subnetworks.bigram import BigramTable
from interp.subnetworks.maskable import MaskableWeight, find_maskable
from interp.subnetworks.masking import swap_weights

__all__ = ["Subnetwork", "VARIANTS", "model_signature"]

_BIGRAM_TENSORS = ("bigram.pairs", "bigram.counts", "bigram.unigram")  # BigramTable.tensors() names
VARIANTS = ("full", "subnetwork", "random", "complement", "random complement", "empty")


def model_signature(model) -> dict[str, Any]:
    """What a mask file must agree with: the model's name, dimensions and maskable parameter shapes."""
    cfg = model.cfg
    return {
        "name": Path(str(model_name(model)).rstrip("/")).name,
        "n_layers": int(cfg.n_layers), "d_model": int(cfg.d_model), "d_vocab": int(cfg.d_vocab),
    }


@dataclass(frozen=True)
class Subnetwork(Result):
    """Binary masks over the maskable matrices of one model (applying them to a model with another name or
    shape raises ``InterpError``). Saved as one ``.safetensors`` file: a ``mask.<name>`` bool tensor per matrix,
    the bigram table's tensors and the other fields as JSON (format ``interp-subnetwork-v1``)."""

    weights: list[MaskableWeight]
    "[matrix] the maskable matrices (name, short name, layer, component, shape) in model order"
    masks: dict[str, torch.Tensor]
    "{bridge parameter name: bool tensor of that parameter's shape}, True = kept; one per entry of ``weights``"
    signature: dict[str, Any]
    "the model's name and dimensions (see ``model_signature``)"
    target: str = "bigram"
    """"bigram" (Chang & Bergen's bigram subnetwork), "model" (optimal pruning: the full model's own distribution),
    "random"/"complement"/"empty" for controls"""
    bigram: BigramTable | None = None
    "the target bigram table, when there is one"
    config: dict[str, Any] = field(default_factory=dict)
    "training settings (lam, lr, steps, ...)"
    log: list[dict[str, float]] = field(default_factory=list)
    "[row] training curve rows {step, loss, ce, kept, beta}"
    _shapes = {"weights": "matrix", "log": "row"}
    _format = "interp-subnetwork-v1"
    _what = "subnetwork"

    def __post_init__(self) -> None:
        super().__post_init__()
        for w in self.weights:
            m = self.masks.get(w.name)
            if m is None or tuple(m.shape) != tuple(w.shape) or m.dtype != torch.bool:
                raise ValueError(f"Subnetwork: mask of {w.short} must be a bool tensor of shape {w.shape}")

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def n_maskable(self) -> int:
        """Number of maskable weight entries."""
        return sum(w.numel for w in self.weights)

    @property
    def n_kept(self) -> int:
        """Number of kept entries."""
        return int(sum(int(m.sum()) for m in self.masks.values()))

    @property
    def kept_fraction(self) -> float:
        """Kept entries / maskable entries (embeddings, unembedding, norms and biases are not counted)."""
        return self.n_kept / max(1, self.n_maskable)

    def kept_table(self) -> list[dict[str, Any]]:
        """One row per (layer, component): {layer, component, kept, total, fraction}, in model order."""
        rows: dict[tuple[int, str], list[int]] = {}
        for w in self.weights:
            r = rows.setdefault((w.layer, w.component), [0, 0])
            r[0] += int(self.masks[w.name].sum())
            r[1] += w.numel
        return [{"layer": lay, "component": c, "kept": k, "total": t, "fraction": k / max(1, t)} for (lay, c), (k, t) in rows.items()]

    def kept_by_layer(self, group: str = "all") -> dict[int, float]:
        """{layer: kept fraction} over the attention matrices (``group="attention"``), the MLP ("mlp") or all."""
        sel = {"attention": ("Q", "K", "V", "O", "QKV"), "mlp": ("MLP in", "MLP out")}.get(group)
        acc: dict[int, list[int]] = {}
        for w in self.weights:
            if sel is None or w.component in sel:
                a = acc.setdefault(w.layer, [0, 0])
                a[0] += int(self.masks[w.name].sum())
                a[1] += w.numel
        return {lay: k / max(1, t) for lay, (k, t) in sorted(acc.items())}

    def share_of_kept(self) -> list[dict[str, Any]]:
        """Where the kept entries are: one row per (layer, component) with ``share`` = its kept / all kept."""
        total = max(1, self.n_kept)
        return [dict(r, share=r["kept"] / total) for r in self.kept_table()]

    # ---- derived subnetworks -----------------------------------------------------------------
    def _derive(self, masks: dict[str, torch.Tensor], target: str, **extra: Any) -> Subnetwork:
        return Subnetwork(self.weights, masks, dict(self.signature), target, self.bigram, dict(self.config, **extra), [])

    def complement(self) -> Subnetwork:
        """The entries this subnetwork drops (``~keep``)."""
        return self._derive({k: ~m for k, m in self.masks.items()}, "complement")

    def random_like(self, seed: int = 0) -> Subnetwork:
        """A random subnetwork with the same number of kept entries in every matrix (entries shuffled)."""
        g = torch.Generator().manual_seed(seed)
        out = {}
        for k, m in self.masks.items():
            flat = m.reshape(-1)
            out[k] = flat[torch.randperm(flat.numel(), generator=g)].reshape(m.shape)
        return self._derive(out, "random", random_seed=seed)

    def empty(self) -> Subnetwork:
        """Nothing kept (only embeddings, unembedding, norms, biases)."""
        return self._derive({k: torch.zeros_like(m) for k, m in self.masks.items()}, "empty")

    def variant(self, name: str, seed: int = 0) -> Subnetwork | None:
        """The subnetwork behind an evaluation variant (``VARIANTS``); None for "full"."""
        if name == "full":
            return None
        if name == "subnetwork":
            return self
        if name == "complement":
            return self.complement()
        if name == "random":
            return self.random_like(seed)
        if name == "random complement":
            return self.random_like(seed).complement()
        if name == "empty":
            return self.empty()
        raise InterpError(f"unknown variant {name!r}; choose one of {VARIANTS}")

    # ---- applying ----------------------------------------------------------------------------
    def check_model(self, model) -> None:
        """Raise ``InterpError`` unless ``model`` has this subnetwork's name, dimensions and matrix shapes."""
        sig = model_signature(model)
        diff = {k: (self.signature.get(k), v) for k, v in sig.items() if self.signature.get(k) != v}
        if diff:
            what = ", ".join(f"{k}: mask {a!r} vs model {b!r}" for k, (a, b) in diff.items())
            raise InterpError(f"this subnetwork was found on another model ({what}); load it onto {self.signature.get('name')!r}")
        params = dict(model.named_parameters())
        for w in self.weights:
            p = params.get(w.name)
            if p is None or tuple(p.shape) != tuple(w.shape):
                got = None if p is None else tuple(p.shape)
                raise InterpError(f"the model's {w.short} is {got}, the subnetwork's mask is {w.shape}: another architecture")

    def masked_weights(self, model) -> dict[str, torch.Tensor]:
        """{name: W * keep} for every maskable matrix of ``model`` (new tensors; the model is untouched)."""
        params = dict(model.named_parameters())
        return {w.name: params[w.name].detach() * self.masks[w.name].to(params[w.name].device, params[w.name].dtype)
                for w in self.weights}

    @contextlib.contextmanager
    def applied(self, model) -> Iterator[Any]:
        """Run ``model`` with only this subnetwork's entries kept inside the ``with`` block; yields the model."""
        self.check_model(model)
        with torch.no_grad():
            weights = self.masked_weights(model)
        with swap_weights(model, weights):
            yield model

    def only(self, model) -> contextlib.AbstractContextManager:
        """``with sub.only(model): model(tokens)`` runs the subnetwork alone (W * keep)."""
        return self.applied(model)

    def ablated(self, model) -> contextlib.AbstractContextManager:
        """``with sub.ablated(model): ...`` runs the model with this subnetwork removed (W * ~keep)."""
        return self.complement().applied(model)

    def random(self, model, seed: int = 0) -> contextlib.AbstractContextManager:
        """``with sub.random(model): ...`` runs a random subnetwork of the same per-matrix size."""
        return self.random_like(seed).applied(model)

    def random_ablated(self, model, seed: int = 0) -> contextlib.AbstractContextManager:
        """``with sub.random_ablated(model): ...`` removes a random same-size subnetwork instead."""
        return self.random_like(seed).complement().applied(model)

    # ---- persistence -------------------------------------------------------------------------
    def _file_entries(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Each mask as ``mask.<name>`` (bool, its shape) or, when that is smaller, ``kept.<name>`` (int32 flat
        indices of the kept entries: a 0.5% mask of a 100M-entry model is 2 MB instead of 100 MB); the bigram
        table's tensors; the rest as JSON (the v1 layout; files with bool masks only still load)."""
        tensors = {}
        for w in self.weights:
            m = self.masks[w.name]
            if 4 * int(m.sum()) < m.numel():
                tensors[f"kept.{w.name}"] = m.reshape(-1).nonzero().squeeze(1).to(torch.int32)
            else:
                tensors[f"mask.{w.name}"] = m.contiguous()
        if self.bigram is not None:
            tensors.update(self.bigram.tensors())
        meta = {
            "weights": [[w.name, w.short, w.layer, w.component, list(w.shape)] for w in self.weights],
            "signature": self.signature, "target": self.target, "config": self.config, "log": self.log,
            "bigram_vocab": None if self.bigram is None else self.bigram.vocab,
        }
        return tensors, meta

    @classmethod
    def _from_entries(cls, entries: FileEntries) -> dict[str, Any]:
        meta = {k: entries.take(k) for k in ("weights", "signature", "target", "config", "log", "bigram_vocab")}
        rows = meta["weights"] or []
        weights = [MaskableWeight(str(n), str(s), int(lay), str(c), tuple(int(x) for x in sh)) for n, s, lay, c, sh in rows]
        masks = {w.name: _read_mask(entries, w) for w in weights}
        vocab_lost = "bigram_vocab" in entries.missing  # then its tensors are not "unknown": the missing field explains them
        table = {k: entries.take(k) for k in _BIGRAM_TENSORS if meta["bigram_vocab"] is not None or (vocab_lost and k in entries)}
        if entries.missing:
            return {}
        bigram = None if meta["bigram_vocab"] is None else BigramTable.from_tensors(table, int(meta["bigram_vocab"]))
        return dict(weights=weights, masks=masks, signature=dict(meta["signature"]), target=str(meta["target"]), bigram=bigram,
                    config=dict(meta["config"]), log=list(meta["log"]))

    @classmethod
    def load(cls, path: str | Path, model=None) -> Subnetwork:
        """Read a file written by ``save``; with ``model`` given, also check it fits. Returns the ``Subnetwork``.

        Raises ``InterpError`` naming the file when it is missing, not a whole safetensors file (a pickle, a
        truncated file), not a subnetwork, damaged (a mask or field missing, renamed or of the wrong shape), or
        made for another model.
        """
        sub = super().load(path)
        if model is not None:
            sub.check_model(model)
        return sub

    @classmethod
    def from_masks(cls, model, masks: dict[str, torch.Tensor], target: str = "custom", **config: Any) -> Subnetwork:
        """Wrap ``{parameter name: bool mask}`` for ``model`` (names must be maskable matrices of it)."""
        found = {w.name: w for w in find_maskable(model)}
        unknown = [k for k in masks if k not in found]
        if unknown:
            raise InterpError(f"not maskable matrices of this model: {unknown[:3]}")
        weights = [found[k] for k in found if k in masks]
        return cls(weights, {k: masks[k].bool().cpu() for k in masks}, model_signature(model), target, None, config)

    def __repr__(self) -> str:
        return (f"Subnetwork({self.target}, {self.signature.get('name')!r}, kept {self.n_kept:,}/{self.n_maskable:,} "
                f"= {100 * self.kept_fraction:.3f}%)")

    def summary(self) -> dict[str, str]:
        return {"target": self.target, "model": str(self.signature.get("name")),
                "kept": f"{self.n_kept:,}/{self.n_maskable:,} = {100 * self.kept_fraction:.3f}%", "matrices": str(len(self.weights))}

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td>{r['layer']}</td><td>{html.escape(r['component'])}</td><td>{r['kept']:,}</td>"
            f"<td>{r['total']:,}</td><td>{100 * r['fraction']:.3f}%</td></tr>" for r in self.kept_table()
        )
        return (f"<div><b>{html.escape(repr(self))}</b><table><tr><th>layer</th><th>component</th><th>kept</th>"
                f"<th>total</th><th>fraction</th></tr>{rows}</table></div>")


def _read_mask(entries: FileEntries, w: MaskableWeight) -> torch.Tensor | None:
    """The bool mask of ``w`` from ``mask.<name>`` or from the kept indices ``kept.<name>`` (None, recorded as
    missing, when neither is there; a ``ValueError`` when indices fall outside the matrix)."""
    if f"kept.{w.name}" not in entries:
        return entries.take(f"mask.{w.name}")
    idx = entries.take(f"kept.{w.name}").long()
    if idx.ndim != 1 or (idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= w.numel)):
        raise ValueError(f"Subnetwork: kept indices of {w.short} fall outside its {w.numel} entries")
    mask = torch.zeros(w.numel, dtype=torch.bool)
    mask[idx] = True
    return mask.reshape(w.shape)
