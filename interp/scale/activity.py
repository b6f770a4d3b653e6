"""Active/dormant heads over corpora too large for one process: per-shard ``head_activity`` merged in shard order.

Each domain's texts are cut into shards of ``shard_docs`` documents; every (domain, shard) is one work item that a
``Worker`` maps to that shard's ``HeadActivity``; the driver merges them with ``merge_activity`` in shard order, so the
result does not depend on the backend or on the order workers finish in. ``heads=N`` (the N heads whose sink score
differs most across domains) needs the sink scores of the whole corpus first: a cheap pass without interventions
picks the heads, then the interventions run on those. With every domain in one shard the result is exactly
``interp.extreme.activity.head_activity`` on the same texts. Before the first shard the bar says the sweep's counts
(shards, head ablations, forward passes); after the first shard comes back, one line gives the estimated time of the
whole sweep (``interp.extreme.activity_cost.SweepMeter``); the result's ``cost`` records both.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

from safetensors.torch import load

from interp.errors import InterpError
from interp.extreme.activity import HeadActivity, _pick_heads, merge_activity
from interp.extreme.activity_cost import SweepMeter, plan_cost
from interp.extreme.inputs import batches, encode
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
    items, numels = [], []
    for d, name in enumerate(names):
        rows = encode(bridge, list(domains[name]), max_len)
        for i in range(0, len(rows), shard_docs):
            items.append(pack(len(items), i, rows[i : i + shard_docs]) | {"domain": d})
            numels.append([ids.numel() for _, ids, _ in batches(rows[i : i + shard_docs], batch_size)])
    settings = {"names": names, "batch_size": batch_size, "sink_threshold": sink_threshold, "tolerance": tolerance,
                "max_batch_tokens": max_batch_tokens}
    run = lambda picked, intervene, desc: _run(items, backend, spec, bridge, workers, address, progress, desc,
                                               settings | {"heads": picked, "interventions": intervene}, numels)
    if interventions and isinstance(heads, int) and not isinstance(heads, bool):
        picked = [list(h) for h in _pick_heads(heads, run(None, False, "activity: sink scores").sink)]
    else:
        picked = None if heads is None or isinstance(heads, int) else [[int(a), int(b)] for a, b in heads]
    return run(picked, interventions, "activity shards")


def _meter(items, numels, bridge, settings, backend, workers, progress, desc) -> tuple[SweepMeter, list[int]]:
    """The sweep's meter (counts said before the first shard, estimate from the first shard back) and each shard's
    work in tokens (clean plus stacked intervention tokens)."""
    n_heads = bridge.cfg.n_layers * bridge.cfg.n_heads if settings["heads"] is None else len(settings["heads"])
    n_jobs = 2 * n_heads if settings["interventions"] else 0
    per = [plan_cost(n, n_jobs, settings["max_batch_tokens"]) for n in numels]
    work = [sum(n) + p["intervention_tokens"] for n, p in zip(numels, per)]
    plan = {"domains": len(settings["names"]), "heads": n_heads if n_jobs else 0, "head_ablations": n_jobs * len(items),
            "shards": len(items), **{k: sum(p[k] for p in per) for k in per[0]}}
    plan["forward_passes"] = plan["clean_passes"] + plan["intervention_passes"]
    parallel = min(workers, len(items)) if backend == "ray" and isinstance(workers, int) else 1
    return SweepMeter(desc, plan, total=len(items), work=sum(work), progress=progress, unit="shard", parallel=parallel), work


def _run(items, backend, spec, bridge, workers, address, progress, desc, settings, numels) -> HeadActivity:
    parts = {}
    meter, work = _meter(items, numels, bridge, settings, backend, workers, progress, desc)
    try:
        for result in run_items(items, backend=backend, spec=spec, task="activity", settings=settings, model=bridge,
                                workers=workers, address=address, progress=False, desc=desc):
            parts[int(result["shard"])] = (load(bytes(result["state"])), json.loads(str(result["meta"])))
            meter.step(1, work[int(result["shard"])])
    finally:
        meter.close()
    name, names = model_name(bridge), settings["names"]
    shards = []
    for i in sorted(parts):
        t, meta = parts[i]
        shards.append(HeadActivity(model=name, domains=[names[items[i]["domain"]]], **t, n_queries=meta["n_queries"],
                                   n_scored=meta["n_scored"], sink_threshold=settings["sink_threshold"],
                                   tolerance=settings["tolerance"]))
    merged = merge_activity(shards)
    return dataclasses.replace(merged, cost=meter.cost())  # the shards carry no cost of their own
