"""Benchmark: sharded LatentLens index build (local vs Ray, 1 and 2 workers) and search over 10^6 / 10^7 stored vectors.

Each measurement runs in a fresh subprocess so its peak memory is its own.

1. Build throughput: ``interp.scale.build_index`` on the ``stories`` model over the same stories documents, with the
   local backend and with Ray (1 and 2 actors, ``num_cpus=1`` each, one torch thread each) on a local 2-CPU cluster.
   tokens/s = corpus tokens / build time; the Ray cluster start is timed separately and not included (the actors'
   model load is: Ray Data starts a fresh actor pool for every build). Each row also gives the steady rate: seconds
   per shard from the moment every worker has finished its first shard to the last one (``steady_s_per_shard``,
   ``steady_tok_per_s``), and that moment (``to_first_shards_s``: the start paid once per build).
2. Search: a synthetic sharded index (d_model 576, fp16, one layer, seeded clustered random vectors: 4096 centres plus
   noise) written with the index's own shard/manifest writers (no model run); 16 queries (stored rows plus noise) per
   batch; exact memory-mapped streaming search vs FAISS Flat and IVF per shard (recall@10 against exact), 1 and 2
   threads. Peak memory: ``ru_maxrss`` (VmHWM, which counts the file pages of the memory maps that were touched; the
   kernel can drop them) and the peak anonymous RSS (sampled every 5 ms: the process's own working memory).

    python bench/scale.py                    # build + 10^6 search (about 10 minutes on 2 cores)
    python bench/scale.py --rows 1000000 10000000 --skip-build
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

D_MODEL = 576
SHARD_ROWS = 100_000
DOC_TOKENS = 100
K = 10
ROOT = Path(__file__).resolve().parent.parent


def _status(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class _Sampler:
    """Peak anonymous RSS (MB) of this process, sampled on a thread."""

    def __init__(self, every: float = 0.005):
        self.peak_anon = _status("RssAnon")
        self.every, self._stop = every, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            self.peak_anon = max(self.peak_anon, _status("RssAnon"))
            time.sleep(self.every)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return max(self.peak_anon, _status("RssAnon"))


def _start_ray() -> float:
    """A local Ray cluster (2 CPUs, loopback, no dashboard), as the scale tests start it; returns seconds."""
    from interp.scale.cluster import start_local_cluster

    return start_local_cluster(num_cpus=2)


def build(backend: str, workers: int, docs: int, repeats: int, model: str, shard_docs: int, layers: str = "1,2",
          store_all: bool = False, warm: int = 0) -> dict:
    """Build the index ``repeats`` times (timed) after ``warm`` untimed builds of the first ``shard_docs x workers``
    documents on the same cluster (a long-lived cluster: Ray Data's system actors are already running)."""
    import torch

    torch.set_num_threads(1)
    from interp.lens.bundled import stories_texts
    from interp.scale import build_index

    texts = stories_texts(docs, "train")
    start_s = _start_ray() if backend == "ray" else 0.0
    spec = model
    if backend == "local":
        from interp.models import load_model

        spec = load_model(model, device="cpu")
    times, tokens, rows, steady, first, dones, warm_s = [], 0, 0, [], [], [], []
    keep = dict(max_per_token=None, dedup=False, min_pos=0) if store_all else {}

    def run(docs_: list[str], out: Path, **extra):
        return build_index(spec, docs_, out=out, layers=[int(x) for x in layers.split(",")], backend=backend,
                           workers=workers, shard_docs=shard_docs, batch_size=16, progress=False, **keep, **extra)

    for _ in range(warm):
        out = Path(tempfile.mkdtemp(prefix="bench_scale_")) / "idx"
        t0 = time.perf_counter()
        run(texts[: shard_docs * workers], out)
        warm_s.append(time.perf_counter() - t0)
        shutil.rmtree(out.parent)
    for _ in range(repeats):
        out = Path(tempfile.mkdtemp(prefix="bench_scale_")) / "idx"
        done: list[float] = []
        t0 = time.perf_counter()
        index = run(texts, out, on_shard=lambda n, done=done, t0=t0: done.append(time.perf_counter() - t0))
        times.append(time.perf_counter() - t0)
        dones.append(done)
        # steady state: from the moment every worker has finished its first shard to the last shard, per shard
        k = min(workers, len(done) - 1)
        first.append(done[k - 1])
        steady.append((done[-1] - done[k - 1]) / (len(done) - k) if len(done) > k else float("nan"))
        tokens = sum(int(s.get("doc_lengths").sum()) for s in index.shards)
        rows = len(index)
        shutil.rmtree(out.parent)
    if backend == "ray":
        import ray

        ray.shutdown()
    med = statistics.median(times)
    per_shard = tokens / len(index.shards)
    return {"kind": "build", "backend": backend, "workers": workers, "docs": docs, "shard_docs": shard_docs, "tokens": tokens, "rows": rows,
            "layers": layers, "store_all": store_all,
            "warm_builds_s": warm_s, "times_s": times, "median_s": med, "tok_per_s": tokens / med, "cluster_start_s": start_s,
            "to_first_shards_s": first, "steady_s_per_shard": steady, "shard_done_s": dones,
            "steady_tok_per_s": per_shard / statistics.median(steady),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def write(folder: str, n_rows: int, dtype: str = "float16") -> dict:
    """A synthetic sharded index of ``n_rows`` clustered vectors (layer 0) stored as ``dtype``, via the index's own writers."""
    import torch

    from interp.lens.latent.files import dtype_from_name
    from interp.lens.latent.manifest import SHARDED_FORMAT, write_manifest, write_shard

    torch.set_num_threads(2)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4096, D_MODEL, generator=g)
    planned = []
    t0 = time.perf_counter()
    for si, a in enumerate(range(0, n_rows, SHARD_ROWS)):
        rows = min(SHARD_ROWS, n_rows - a)
        gs = torch.Generator().manual_seed(1000 + si)
        c = torch.randint(0, len(centres), (rows,), generator=gs)
        v = (centres[c] + 0.7 * torch.randn(rows, D_MODEL, generator=gs)).to(dtype_from_name(dtype, "--dtype"))
        local = torch.arange(rows, dtype=torch.int32)
        texts = -(-rows // DOC_TOKENS)  # documents of DOC_TOKENS tokens, every token stored
        tensors = {"vectors.0": v, "inv_norms.0": 1.0 / v.float().norm(dim=1), "token_ids": local % 100,
                   "doc_ids": (a + local) // DOC_TOKENS, "positions": local % DOC_TOKENS,
                   "doc_lengths": torch.tensor([min(DOC_TOKENS, rows - t * DOC_TOKENS) for t in range(texts)], dtype=torch.int64),
                   "doc_tokens": local % 100}
        write_shard(out, si, tensors, plan="synthetic")
        planned.append({"rows": rows, "texts": texts})
    (out / "vocab.json").write_text(json.dumps([f"t{i}" for i in range(100)]))
    meta = dict(format=SHARDED_FORMAT, model="synthetic", decoder_hash="synthetic", d_model=D_MODEL, n_layers=1, layers=[0],
                dtype=dtype, max_per_token=None, min_pos=0, dedup=False, bos_id=None, batch_size=1, shard_docs=1,
                corpus="synthetic", texts=sum(p["texts"] for p in planned), rows=n_rows, planned=planned,
                complete=list(range(len(planned))),
                plan="synthetic")
    write_manifest(out, meta)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"kind": "write", "rows": n_rows, "shards": len(planned), "disk_mb": size / 2**20, "write_s": time.perf_counter() - t0}


def _queries(index, n: int = 16):
    import torch

    g = torch.Generator().manual_seed(7)
    rows = torch.randint(0, len(index), (n,), generator=g)
    where = index._locate(rows)
    q = torch.stack([index.shards[int(s)].get("vectors.0")[int(r) - index.shards[int(s)].first_row].float()
                     for s, r in zip(where, rows, strict=True)])
    return q + 0.3 * q.norm(dim=1, keepdim=True) / D_MODEL**0.5 * torch.randn(q.shape, generator=g)


def search(folder: str, backend: str, spec: str, threads: int, repeats: int, chunk: int, nprobe: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    if backend == "faiss":
        import faiss

        faiss.omp_set_num_threads(threads)
    from interp.lens.latent import LatentIndex

    sampler = _Sampler()
    index = LatentIndex.open(folder)
    q = _queries(index)
    kw = dict(backend=backend, chunk=chunk, faiss_index=spec, nprobe=nprobe)
    t0 = time.perf_counter()
    first = index.search(q, k=K, **kw)  # FAISS: builds the per-shard indexes; exact: first pass over the files
    first_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = index.search(q, k=K, **kw)
        times.append(time.perf_counter() - t0)
    peak_anon = sampler.stop()
    recall = None
    if backend == "faiss":
        exact = index.search(q, k=K, chunk=chunk)
        recall = statistics.mean(len(set(a) & set(b)) / K for a, b in zip(res.rows.tolist(), exact.rows.tolist(), strict=True))
    del first
    size = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
    return {"kind": "search", "rows": len(index), "backend": backend, "spec": spec if backend == "faiss" else "exact",
            "threads": threads, "chunk": chunk, "nprobe": nprobe, "first_s": first_s, "times_s": times,
            "median_ms": 1000 * statistics.median(times), "recall10": recall, "peak_anon_mb": peak_anon,
            "vmhwm_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "disk_mb": size / 2**20,
            "shard_mb": SHARD_ROWS * D_MODEL * 2 / 2**20}


def _sub(args: list[str], timeout: float) -> dict | None:
    cmd = [sys.executable, __file__, "--one", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        print(f"  timed out after {timeout:.0f} s: {' '.join(args)}", flush=True)
        return None
    if p.returncode != 0:
        print(f"  failed ({p.returncode}): {' '.join(args)}\n{p.stderr[-3000:]}", flush=True)
        return None
    r = json.loads(p.stdout.strip().splitlines()[-1])
    print("  " + json.dumps(r), flush=True)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--docs", type=int, default=2048, help="stories documents for the build")
    ap.add_argument("--model", default="stories")
    ap.add_argument("--build-repeats", type=int, default=3)
    ap.add_argument("--shard-docs", type=int, default=256, help="documents per shard (one Ray task each)")
    ap.add_argument("--layers", default="1,2", help="build: comma-separated layers to store")
    ap.add_argument("--store-all", action="store_true",
                    help="build: store every token (max_per_token None, no dedup, min_pos 0), so forward passes dominate")
    ap.add_argument("--backends", default="local:1,ray:1,ray:2", help="build rows: backend:workers, comma-separated")
    ap.add_argument("--warm-builds", type=int, default=0,
                    help="untimed builds of a few shards before the timed ones, on the same cluster (a long-lived cluster)")
    ap.add_argument("--build-timeout", type=float, default=600, help="seconds per build subprocess")
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--repeats", type=int, default=5, help="timed search batches after a warm-up batch")
    ap.add_argument("--faiss", nargs="*", default=["Flat", "IVF256,Flat"])
    ap.add_argument("--nprobe", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"], help="search: storage dtype of the index")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-search", action="store_true")
    ap.add_argument("--faiss-max-rows", type=int, default=1_000_000, help="FAISS only up to this many rows (it loads all)")
    ap.add_argument("--folder", default=None, help="where the synthetic index goes (deleted afterwards)")
    ap.add_argument("--out", default=None, help="write all results as JSON here")
    a = ap.parse_args()
    if a.one:
        kind, *rest = a.one
        if kind == "build":
            r = build(rest[0], int(rest[1]), int(rest[2]), int(rest[3]), rest[4], int(rest[5]), rest[6], rest[7] == "1",
                      int(rest[8]))
        elif kind == "write":
            r = write(rest[0], int(rest[1]), rest[2])
        else:
            r = search(rest[0], rest[1], rest[2], int(rest[3]), int(rest[4]), int(rest[5]), int(rest[6]))
        print(json.dumps(r))
        return
    results = []
    if not a.skip_build:
        print(f"build: {a.model}, {a.docs} stories documents, {a.shard_docs} per shard, layers [{a.layers}]"
              + (", every token stored" if a.store_all else ""), flush=True)
        for backend, workers in (b.split(":") for b in a.backends.split(",")):
            results.append(_sub(["build", backend, workers, str(a.docs), str(a.build_repeats), a.model,
                                 str(a.shard_docs), a.layers, str(int(a.store_all)), str(a.warm_builds)], a.build_timeout))
        by = {(r["backend"], r["workers"]): r for r in results if r}
        if ("ray", 1) in by and ("ray", 2) in by:
            r1, r2 = by[("ray", 1)], by[("ray", 2)]
            print(f"  ray 2 workers / 1 worker: {r2['tok_per_s'] / r1['tok_per_s']:.2f}x whole build, "
                  f"{r2['steady_tok_per_s'] / r1['steady_tok_per_s']:.2f}x steady state", flush=True)
    if not a.skip_search:
        for n in a.rows:
            folder = Path(a.folder or tempfile.mkdtemp(prefix="bench_scale_idx_", dir=ROOT / "bench")) / f"synthetic_{n}"
            try:
                print(f"search: {n:,} rows x {D_MODEL} {a.dtype} in {folder}", flush=True)
                results.append(_sub(["write", str(folder), str(n), a.dtype], 1800))
                for threads in (1, 2):
                    results.append(_sub(["search", str(folder), "torch", "exact", str(threads), str(a.repeats), str(a.chunk),
                                         str(a.nprobe)], 900))
                    if n <= a.faiss_max_rows:
                        for spec in a.faiss:
                            results.append(_sub(["search", str(folder), "faiss", spec, str(threads), str(a.repeats),
                                                 str(a.chunk), str(a.nprobe)], 900))
            finally:
                shutil.rmtree(folder.parent if a.folder is None else folder, ignore_errors=True)
    if a.out:
        Path(a.out).write_text(json.dumps([r for r in results if r], indent=1) + "\n")


if __name__ == "__main__":
    main()
