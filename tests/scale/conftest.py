"""The scale tier: a local Ray cluster for the module that needs one (2 CPUs, loopback only, no dashboard), torn down after.

On a loaded machine Ray's raylet gives up after ~30 s waiting for its agents to report the ports they bound; the
fixture gives every agent a fixed free loopback port up front (this removes most waits) and starts afresh when the
raylet still gives up (it waits for the dashboard agent's port file regardless).
"""

from __future__ import annotations

import os
import socket

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """A running local Ray cluster (2 CPUs); yields the ``ray`` module."""
    import ray
    from ray._private import parameter

    original = parameter.RayParams.__init__

    def with_ports(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for name in ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port", "runtime_env_agent_port"):
            setattr(self, name, _free_port())  # the defaults (None, 52365) make the raylet wait for port files

    parameter.RayParams.__init__ = with_ports
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        for attempt in range(3):  # the raylet still gives up when the dashboard agent is slow to start; start afresh
            try:
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
                         runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}})
                break
            except Exception:
                ray.shutdown()
                if attempt == 2:
                    raise
    finally:
        parameter.RayParams.__init__ = original
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def docs():
    """40 short stories documents (about 16k characters)."""
    from interp.lens.bundled import stories_texts

    return stories_texts(40, "train")
