"""A local Ray cluster that starts on a busy machine: loopback only, no dashboard, fixed agent ports, retried.

On a loaded machine Ray's raylet gives up after ~30 s waiting for its agents to report the ports they bound; giving
every agent a free loopback port up front removes most waits, and a start that still gives up is tried afresh.
For a real cluster use ``ray start --head`` / ``--address`` instead (README, "Scaling out"); ``connect`` joins one,
first checking (with a bounded wait) that something listens at the address, since ``ray.init`` retries a dead
address forever.
"""

from __future__ import annotations

import os
import socket
import time

from interp.errors import InterpError

__all__ = ["start_local_cluster", "connect", "check_reachable", "CONNECT_TIMEOUT_S"]

CONNECT_TIMEOUT_S = 10.0
"seconds ``connect`` waits for a TCP answer from a Ray address before giving up"

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


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> tuple[str, int]:
    """(host, port) of a Ray ``address`` ("host:port", "ray://host:port", "[v6]:port") after a TCP connection to it
    succeeded within ``timeout`` seconds; ``InterpError`` naming the address when it is malformed or nothing answers."""
    text = address.strip()
    bare = text.split("://", 1)[1] if "://" in text else text
    host, sep, port = bare.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InterpError(f"Ray address {address!r} is not host:port (for example 127.0.0.1:6379, or ray://host:10001)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or type(e).__name__)
        raise InterpError(f"no Ray cluster at {address} ({why} within {timeout:g} s): start one there with "
                          "'ray start --head', fix --address / RAY_ADDRESS, or leave both out for a local cluster") from None
    return host, int(port)


def connect(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """``ray.init`` joining ``address`` (else ``$RAY_ADDRESS``, else starting a local cluster); an explicit address is
    first checked with ``check_reachable`` (at most ``timeout`` seconds), so a dead one is an ``InterpError``, not a
    start that retries forever."""
    import ray

    target = address or os.environ.get("RAY_ADDRESS") or None
    if target and target.strip() not in ("auto", "local"):
        check_reachable(target, timeout)
    ray.init(address=target, include_dashboard=False, log_to_driver=False)
