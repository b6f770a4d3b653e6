"""Extreme-token scans of a corpus by the local or the Ray backend: per-shard statistics merged in shard order.

Both backends compute the same per-shard partials (``interp.extreme.scan.scan_partial``) and the driver merges them
in shard order, so the report does not depend on the backend or on the order workers finish in. With one shard
(``shard_docs`` >= the corpus) the report is exactly ``interp.extreme.scan(model, docs)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from safetensors.torch import load

from interp.errors import InterpError
from interp.extreme.inputs import encode
from interp.extreme.report import ExtremeTokenReport, Thresholds
from interp.extreme.scan import _Accumulator, finish_scan
from interp.scale.backends import run_items
from interp.scale.corpus import read_corpus
from interp.scale.index import _load
from interp.scale.worker import pack

__all__ = ["scan_corpus"]


def scan_corpus(
    model, corpus, *, backend: str = "local", workers: int = 2, shard_docs: int = 64, batch_size: int = 8,
    max_len: int | None = None, thresholds: Thresholds | None = None, max_events: int = 1000, device: str | None = None,
    address: str | None = None, progress: bool = True, field: str = "text",
) -> ExtremeTokenReport:
    """The ``ExtremeTokenReport`` of ``corpus`` (anything ``read_corpus`` reads) under ``model`` (a spec, required for
    Ray, or a loaded bridge), computed shard by shard (``shard_docs`` documents each) on ``backend``."""
    if isinstance(shard_docs, bool) or not isinstance(shard_docs, int) or shard_docs < 1:
        raise InterpError(f"shard_docs must be a whole number >= 1, got {shard_docs!r}")
    t = thresholds or Thresholds()
    spec, bridge = _load(model, device)
    docs = corpus if _is_texts(corpus) else read_corpus(corpus, field=field)
    rows = encode(bridge, docs, max_len)
    items = [pack(i // shard_docs, i, rows[i : i + shard_docs]) for i in range(0, len(rows), shard_docs)]
    settings = {"batch_size": batch_size, "thresholds": asdict(t), "max_events": max_events}
    parts = {}
    for result in run_items(items, backend=backend, spec=spec, task="scan", settings=settings, model=bridge, workers=workers,
                            address=address, progress=progress, desc="scan shards"):
        parts[int(result["shard"])] = (load(bytes(result["state"])), json.loads(str(result["meta"])))
    total = None
    for i in sorted(parts):
        acc = _Accumulator.from_state(t, max_events, *parts[i])
        total = acc if total is None else total.merge(acc)
    return finish_scan(bridge, total)


def _is_texts(corpus) -> bool:
    return isinstance(corpus, list | tuple) and all(isinstance(d, str) for d in corpus) and not isinstance(corpus, str | Path)
