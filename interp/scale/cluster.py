"""A local Ray cluster that starts on a busy machine: loopback only, no dashboard, fixed agent ports, retried.

On a loaded machine Ray's raylet gives up after ~30 s waiting for its agents to report the ports they bound; giving
every agent a free loopback port up front removes most waits, and a start that still gives up is tried afresh.
For a real cluster use ``ray start --head`` / ``--address`` instead (README, "Scaling out").
"""

from __future__ import annotations

import os
import socket
import time

__all__ = ["start_local_cluster"]

_AGENT_PORTS = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port", "runtime_env_agent_port")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local_cluster(num_cpus: int = 2, attempts: int = 3) -> float:
    """``ray.init`` a local cluster of ``num_cpus`` CPUs (workers run offline, one torch thread each); returns the
    seconds it took. Raises the last start error after ``attempts`` failed starts."""
    import ray
    from ray._private import parameter

    original = parameter.RayParams.__init__

    def with_ports(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for name in _AGENT_PORTS:
            setattr(self, name, _free_port())  # the defaults (None, 52365) make the raylet wait for port files

    parameter.RayParams.__init__ = with_ports
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    t0 = time.perf_counter()
    try:
        for attempt in range(attempts):
            try:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
                         runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}})
                break
            except Exception:
                ray.shutdown()
                if attempt == attempts - 1:
                    raise
    finally:
        parameter.RayParams.__init__ = original
    return time.perf_counter() - t0
