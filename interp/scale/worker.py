"""The one extraction unit of both backends: a worker that loads a model once and maps shards to what is stored.

A work item is one shard of the corpus, already tokenised and planned by the driver::

    {"shard": i, "first_doc": global id of its first document, "lengths": int64 bytes [texts],
     "tokens": int32 bytes [sum of lengths], "keep": bool bytes [sum of lengths] (index jobs only)}

``Worker(spec, task, settings)`` is what Ray Data instantiates once per actor (``map_batches`` with a callable
class); the local backend makes one in-process around the driver's model. ``task="index"`` writes the shard's
LatentLens rows to the index folder atomically and returns its row count; ``task="scan"`` returns the shard's
mergeable scan statistics (safetensors bytes + JSON); ``task="activity"`` returns the shard's ``HeadActivity`` for the
one domain the item names (``"domain"``: its position in ``settings["names"]``), as safetensors bytes + JSON.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from safetensors.torch import save

from interp.errors import InterpError

__all__ = ["Worker", "pack", "unpack_docs", "TASKS"]

TASKS = ("index", "scan", "activity")


def pack(shard: int, first_doc: int, seqs: list[torch.Tensor], keep: list[torch.Tensor] | None = None) -> dict:
    """The work item of one shard (see the module docstring) from its token-id tensors and keep masks."""
    item = {"shard": shard, "first_doc": first_doc,
            "lengths": np.array([len(s) for s in seqs], dtype=np.int64).tobytes(),
            "tokens": torch.cat(seqs).to(torch.int32).numpy().tobytes()}
    if keep is not None:
        item["keep"] = torch.cat(keep).numpy().astype(np.bool_).tobytes()
    return item


def unpack_docs(item: dict, name: str = "tokens", dtype=np.int32) -> list[torch.Tensor]:
    """The per-document tensors of field ``name`` of a work item."""
    lengths = np.frombuffer(item["lengths"], dtype=np.int64)
    flat = torch.from_numpy(np.frombuffer(item[name], dtype=dtype).copy())
    return list(torch.split(flat, lengths.tolist()))


class Worker:
    """Loads the model of ``spec`` once (or wraps ``model``) and runs work items of ``task`` (one of ``TASKS``).

    ``settings``: index: layers, dtype name, batch_size, out (folder), plan (fingerprint); scan: batch_size,
    thresholds (dict), max_events; activity: names, heads (list of [layer, head] or None), and the other
    ``head_activity`` options (batch_size, sink_threshold, tolerance, interventions, max_batch_tokens).
    ``threads``: torch threads of this process (1 per worker on a CPU node).
    """

    def __init__(self, spec: str | None, task: str, settings: dict, *, device: str = "cpu", threads: int | None = None, model=None):
        if task not in TASKS:
            raise InterpError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
        if threads:
            torch.set_num_threads(threads)
        if model is None:
            from interp.models import load_model

            model = load_model(spec, device=device)
        self.model, self.task, self.settings = model, task, settings

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Ray Data entry: a batch of work items (columns) to a batch of results (columns)."""
        n = len(batch["shard"])
        out = [self.run({k: v[i] for k, v in batch.items()}) for i in range(n)]
        return {k: np.array([o[k] for o in out], dtype=object if isinstance(out[0][k], (bytes, str)) else None) for k in out[0]}

    @torch.no_grad()
    def run(self, item: dict) -> dict:
        """One work item to its result: index {"shard", "rows"}; scan and activity {"shard", "state" (bytes), "meta" (JSON)}."""
        return {"index": self._index, "scan": self._scan, "activity": self._activity}[self.task](item)

    def _index(self, item: dict) -> dict:
        from interp.lens.data import pad_batches
        from interp.lens.latent.files import dtype_from_name
        from interp.lens.latent.index import unit_vectors
        from interp.lens.latent.layers import layer_states
        from interp.lens.latent.manifest import write_shard

        s, model = self.settings, self.model
        layers, dtype = s["layers"], dtype_from_name(s["dtype"], "settings")
        seqs, keeps = unpack_docs(item), unpack_docs(item, "keep", np.bool_)
        first_doc = int(item["first_doc"])
        parts: dict[str, list[torch.Tensor]] = {f"{kind}.{layer}": [] for layer in layers for kind in ("vectors", "inv_norms")}
        meta: dict[str, list[torch.Tensor]] = {"token_ids": [], "doc_ids": [], "positions": []}
        for idx, ids, mask in pad_batches(seqs, s["batch_size"]):
            keep = torch.zeros_like(mask)
            for row, i in enumerate(idx):
                keep[row, : len(keeps[i])] = keeps[i]
            if not keep.any():
                continue
            dev_keep = keep.to(model.cfg.device)
            for layer, h in layer_states(model, ids, layers).items():
                unit, inv = unit_vectors(h[dev_keep], dtype)
                parts[f"vectors.{layer}"].append(unit)
                parts[f"inv_norms.{layer}"].append(inv)
            meta["token_ids"].append(ids[keep].to(torch.int32))
            meta["doc_ids"].append((torch.tensor(idx, dtype=torch.int32) + first_doc)[:, None].expand_as(ids)[keep])
            meta["positions"].append(torch.arange(ids.shape[1], dtype=torch.int32)[None].expand_as(ids)[keep])
        d = model.cfg.d_model
        empty = {"vectors": torch.empty(0, d, dtype=dtype), "inv_norms": torch.empty(0), "meta": torch.empty(0, dtype=torch.int32)}
        tensors = {k: torch.cat(v) if v else empty[k.split(".")[0]] for k, v in parts.items()}
        tensors.update({k: torch.cat(v) if v else empty["meta"] for k, v in meta.items()})
        tensors["doc_lengths"] = torch.tensor([len(x) for x in seqs], dtype=torch.int64)
        tensors["doc_tokens"] = torch.cat(seqs).to(torch.int32)
        write_shard(s["out"], int(item["shard"]), tensors, s["plan"])
        return {"shard": int(item["shard"]), "rows": len(tensors["token_ids"])}

    def _scan(self, item: dict) -> dict:
        from interp.extreme.report import Thresholds
        from interp.extreme.scan import scan_partial

        s = self.settings
        rows = [r.long() for r in unpack_docs(item)]
        acc = scan_partial(self.model, rows, batch_size=s["batch_size"], thresholds=Thresholds(**s["thresholds"]),
                           max_events=s["max_events"], doc_offset=int(item["first_doc"]))
        tensors, meta = acc.state()
        return {"shard": int(item["shard"]), "state": save(tensors), "meta": json.dumps(meta)}

    def _activity(self, item: dict) -> dict:
        from interp.extreme.activity import head_activity

        s = dict(self.settings)
        name = s.pop("names")[int(item["domain"])]
        heads = s.pop("heads")
        part = head_activity(self.model, {name: [r.long() for r in unpack_docs(item)]}, progress=False,
                             heads=None if heads is None else [tuple(h) for h in heads], **s)
        tensors = {f: getattr(part, f) for f in ("sink", "prev", "loss", "dloss_zero", "dloss_bos")}
        meta = {"n_queries": part.n_queries, "n_scored": part.n_scored}
        return {"shard": int(item["shard"]), "state": save(tensors), "meta": json.dumps(meta)}
