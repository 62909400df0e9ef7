"""One local Ray cluster for the whole ``ray`` tier (see ray_cluster.py), started once (``ray.init``
with 2 CPUs) and shut down after the last ray test; the teardown asserts that no process it started
is left and nothing listens on the proxy's port. Every wait is bounded."""

from __future__ import annotations

import socket
import time
from typing import Iterator

import pytest

from ray_cluster import Cluster, alive


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("ray"))
    try:
        yield c
    finally:
        pids = c.stop()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.2)
        left = [p for p in pids if alive(p)]
        assert len(pids) >= 4, pids  # gcs, raylet, the Serve controller/proxy and the replicas ran below us
        assert left == [], f"processes left after ray.shutdown(): {left}"
        with socket.socket() as s:  # nothing listens on the proxy's port (REUSEADDR: client TIME_WAITs remain)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", c.port))
