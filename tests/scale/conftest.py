"""The scale tier: a local Ray cluster for the module that needs one (2 CPUs, loopback only, no dashboard), torn down after.

The cluster comes from ``interp.scale.cluster.start_local_cluster`` (fixed agent ports and retries, so it starts on a
loaded machine).
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ray_cluster():
    """A running local Ray cluster (2 CPUs); yields the ``ray`` module."""
    import ray

    from interp.scale.cluster import start_local_cluster

    start_local_cluster(num_cpus=2)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def docs():
    """40 short stories documents (about 16k characters)."""
    from interp.lens.bundled import stories_texts

    return stories_texts(40, "train")
