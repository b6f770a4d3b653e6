"""Active/dormant heads over corpora too large for one process: per-shard ``head_activity`` merged in shard order.

Each domain's texts are cut into shards of ``shard_docs`` documents; every (domain, shard) is one work item that a
``Worker`` maps to that shard's ``HeadActivity``; the driver merges them with ``merge_activity`` in shard order, so the
result does not depend on the backend or on the order workers finish in. ``heads=N`` (the N heads whose sink score
differs most across domains) needs the sink scores of the whole corpus first: a cheap pass without interventions
picks the heads, then the interventions run on those. With every domain in one shard the result is exactly
``interp.extreme.activity.head_activity`` on the same texts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from safetensors.torch import load

from interp.errors import InterpError
from interp.extreme.activity import HeadActivity, _pick_heads, merge_activity
from interp.extreme.inputs import encode
from interp.models import model_name
from interp.scale.backends import run_items
from interp.scale.index import _load
from interp.scale.worker import pack
from interp.validate import check_int

__all__ = ["activity_corpus"]


def activity_corpus(
    model, domains: Mapping[str, Sequence[str]], *, backend: str = "local", workers: int = 2, shard_docs: int = 64,
    batch_size: int = 16, max_len: int | None = None, sink_threshold: float = 0.3, tolerance: float = 0.05,
    interventions: bool = True, heads: int | Sequence[tuple[int, int]] | None = None, max_batch_tokens: int = 2048,
    device: str | None = None, address: str | None = None, progress: bool = True,
) -> HeadActivity:
    """``HeadActivity`` of ``domains`` (name -> list of texts) under ``model`` (a spec, required for Ray, or a loaded
    bridge), computed shard by shard on ``backend`` and merged (see the module docstring); options as in
    ``head_activity``. Returns ``HeadActivity`` ([domain, layer, head] tensors, domains in the given order)."""
    shard_docs = check_int("shard_docs", shard_docs, minimum=1)
    if not isinstance(domains, Mapping) or not domains:
        raise InterpError("domains must be a non-empty dict name -> list of texts, e.g. {'code': [...], 'prose': [...]}")
    spec, bridge = _load(model, device)
    names = [str(n) for n in domains]
    items = []
    for d, name in enumerate(names):
        rows = encode(bridge, list(domains[name]), max_len)
        for i in range(0, len(rows), shard_docs):
            items.append(pack(len(items), i, rows[i : i + shard_docs]) | {"domain": d})
    settings = {"names": names, "batch_size": batch_size, "sink_threshold": sink_threshold, "tolerance": tolerance,
                "max_batch_tokens": max_batch_tokens}
    run = lambda picked, intervene, desc: _run(items, backend, spec, bridge, workers, address, progress, desc,
                                               settings | {"heads": picked, "interventions": intervene})
    if interventions and isinstance(heads, int) and not isinstance(heads, bool):
        picked = [list(h) for h in _pick_heads(heads, run(None, False, "activity: sink scores").sink)]
    else:
        picked = None if heads is None or isinstance(heads, int) else [[int(a), int(b)] for a, b in heads]
    return run(picked, interventions, "activity shards")


def _run(items, backend, spec, bridge, workers, address, progress, desc, settings) -> HeadActivity:
    parts = {}
    for result in run_items(items, backend=backend, spec=spec, task="activity", settings=settings, model=bridge,
                            workers=workers, address=address, progress=progress, desc=desc):
        parts[int(result["shard"])] = (load(bytes(result["state"])), json.loads(str(result["meta"])))
    name, names = model_name(bridge), settings["names"]
    shards = []
    for i in sorted(parts):
        t, meta = parts[i]
        shards.append(HeadActivity(model=name, domains=[names[items[i]["domain"]]], **t, n_queries=meta["n_queries"],
                                   n_scored=meta["n_scored"], sink_threshold=settings["sink_threshold"],
                                   tolerance=settings["tolerance"]))
    return merge_activity(shards)
