"""Where work items run: in this process (``local``, the default) or under Ray Data (``ray``).

Both take the same ``Worker`` arguments and work items and yield the workers' results as they finish (any
order; callers key them by shard). Ray: ``map_batches`` over one block per shard with a pool of ``workers``
stateful actors, each loading the model once; one GPU per actor where the cluster has GPUs, else ``num_cpus``
per actor (and that many torch threads).
"""

from __future__ import annotations

from collections.abc import Iterator

from tqdm.auto import tqdm

from interp.errors import InterpError

__all__ = ["BACKENDS", "require_ray", "run_items"]

BACKENDS = ("local", "ray")


def require_ray():
    """The ``ray`` module with Ray Data; ``InterpError`` with the install command when it is missing."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise InterpError('--backend ray needs Ray: pip install "interp-workbench[scale]" (or pip install "ray[data]>=2.9")') from None
    return ray


def run_items(items: list[dict], *, backend: str, spec: str | None, task: str, settings: dict, model=None, workers: int = 2,
              cpus_per_worker: int = 1, address: str | None = None, progress: bool = True, desc: str = "") -> Iterator[dict]:
    """Run work ``items`` through ``Worker(spec, task, settings)`` on ``backend``; yields one result dict per item.

    ``local`` reuses ``model`` (the driver's) when given. ``ray`` connects to ``address`` (or ``RAY_ADDRESS``, or the
    cluster this process already joined, or starts a local one) and needs ``spec`` so that workers load the model.
    """
    from interp.scale.worker import Worker

    if backend not in BACKENDS:
        raise InterpError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if not items:
        return
    if backend == "local":
        worker = Worker(spec, task, settings, model=model)
        for item in tqdm(items, desc=desc, unit="shard", disable=not progress):
            yield worker.run(item)
        return
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InterpError(f"workers must be a whole number >= 1, got {workers!r}")
    if not isinstance(spec, str):
        raise InterpError("the Ray backend needs the model as a name or path (workers load it themselves), not a loaded model")
    ray = require_ray()
    if not ray.is_initialized():
        from interp.scale.cluster import connect

        connect(address)  # a dead address is an InterpError within seconds (ray.init alone retries it forever)
    gpus = ray.cluster_resources().get("GPU", 0) >= 1
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    resources = {"num_gpus": 1} if gpus else {"num_cpus": cpus_per_worker}
    out = ds.map_batches(
        Worker, fn_constructor_args=(spec, task, settings),
        fn_constructor_kwargs={"device": "cuda" if gpus else "cpu", "threads": None if gpus else cpus_per_worker},
        batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(workers, len(items))), batch_format="numpy", **resources,
    )
    for row in out.iter_rows():
        yield {k: (v.item() if hasattr(v, "item") and getattr(v, "ndim", 1) == 0 else v) for k, v in row.items()}
