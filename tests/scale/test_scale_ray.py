"""The Ray backend (2 workers on a local 2-CPU cluster) gives the same index and scan report as the local backend,
and a Ray build killed mid-way (SIGKILL of the driver) resumes to the same index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from interp.lens import LatentIndex
from interp.scale import build_index, scan_corpus
from tests.scale.test_scale_local import LAYERS, assert_same_index

pytestmark = pytest.mark.scale
FIELDS = ("sink_score", "gu_share", "value_first", "value_other", "resid_first", "resid_other_max", "resid_other_median",
          "top_abs", "median_abs")


@pytest.fixture(scope="module")
def local_index(stories, docs, tmp_path_factory, one_thread_module):
    out = tmp_path_factory.mktemp("local") / "idx"
    return LatentIndex.load(build_index(stories, docs, out=out, layers=LAYERS, batch_size=8, shard_docs=8, progress=False).path)


def test_ray_index_equals_local_bit_for_bit(ray_cluster, local_index, docs, tmp_path):
    index = build_index("stories", docs, out=tmp_path / "idx", layers=LAYERS, batch_size=8, shard_docs=8, backend="ray",
                        workers=2, progress=False)
    assert len(index.shards) == 5
    assert_same_index(LatentIndex.load(index.path), local_index)


def assert_same_report(a, b) -> None:
    """Two ``ExtremeTokenReport``s are equal: tensors bit for bit, everything else ``==``."""
    for f in FIELDS:
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    for f in ("n_texts", "n_tokens", "uniform_sink", "massive", "n_massive", "other_sinks", "thresholds"):
        assert getattr(a, f) == getattr(b, f), f


def test_ray_scan_equals_local(ray_cluster, stories, docs, one_thread_module):
    ray_report = scan_corpus("stories", docs, shard_docs=8, backend="ray", workers=2, progress=False)
    assert_same_report(ray_report, scan_corpus(stories, docs, shard_docs=8, progress=False))


def test_killed_ray_build_resumes_to_the_same_index(ray_cluster, local_index, docs, stories, tmp_path):
    """A driver killed with SIGKILL right after the first shard is recorded leaves a folder that a re-run completes."""
    out = tmp_path / "idx"
    (tmp_path / "docs.json").write_text(json.dumps(docs))
    script = textwrap.dedent(f"""
        import json, os, signal, ray
        from interp.scale import build_index
        ray.init(address={ray_cluster.get_runtime_context().gcs_address!r}, log_to_driver=False)
        docs = json.load(open({str(tmp_path / "docs.json")!r}))
        def kill(n_done):
            os.kill(os.getpid(), signal.SIGKILL)
        build_index("stories", docs, out={str(out)!r}, layers={LAYERS}, batch_size=8, shard_docs=8, backend="ray",
                    workers=2, progress=False, on_shard=kill)
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    meta = json.loads((out / "index.json").read_text())
    assert meta["complete"] == [meta["complete"][0]] and len(meta["planned"]) == 5  # killed after one recorded shard
    done = []
    resumed = build_index(stories, docs, out=out, layers=LAYERS, batch_size=8, shard_docs=8, progress=False, on_shard=done.append)
    assert len(done) <= 4  # the recorded shard (and any the workers finished before the kill) were not rebuilt
    assert_same_index(LatentIndex.load(resumed.path), local_index)
    assert_same_index(LatentIndex.load(out), local_index)


def test_ray_activity_equals_local(ray_cluster, stories, docs, one_thread_module):
    from interp.scale import activity_corpus

    domains = {"a": docs[:12], "b": docs[12:20]}
    kw = dict(heads=[(0, 0), (2, 3)], shard_docs=4, batch_size=4, progress=False)
    ray_result = activity_corpus("stories", domains, backend="ray", workers=2, **kw)
    local = activity_corpus(stories, domains, **kw)
    for f in ("sink", "prev", "loss", "dloss_zero", "dloss_bos"):
        torch.testing.assert_close(getattr(ray_result, f), getattr(local, f), atol=0, rtol=0, equal_nan=True, msg=f)
    assert ray_result.n_queries == local.n_queries and ray_result.domains == local.domains
