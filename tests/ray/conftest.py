"""One local Ray cluster for the whole ``ray`` tier (see ray_cluster.py), started by the first ray test
that asks for it (``ray.init`` with 2 CPUs) and shut down right after the tier's last test; that
teardown fails the test run if a process the cluster started is left, or anything still listens on
Serve's HTTP port. Every wait is bounded."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from ray_cluster import Cluster, alive

HERE = Path(__file__).resolve().parent
_running: list[Cluster] = []


def _stop_and_check(cluster: Cluster) -> None:
    pids = cluster.stop()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    left = [p for p in pids if alive(p)]
    assert len(pids) >= 4, pids  # gcs, raylet, the Serve controller/proxy and the replicas ran below us
    assert left == [], f"processes left after ray.shutdown(): {left}"
    with socket.socket() as s:  # nothing listens on the proxy's port (REUSEADDR: client TIME_WAITs remain)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", cluster.port))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("ray"))
    _running.append(c)
    try:
        yield c
    finally:
        if not c.stopped:  # the run ended inside the tier (-x, -k): still shut down and check
            _stop_and_check(c)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """After the tier's last test (its module fixtures torn down): stop the cluster and check."""
    result = yield
    if _running and not _running[-1].stopped and (nextitem is None or HERE not in Path(nextitem.path).parents):
        _stop_and_check(_running[-1])
    return result
