"""The ``redis`` response cache against a real ``redis-server`` started on loopback by the fixture.

Skips with a reason when Debian's redis-server or the ``redis`` client is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from model_repos import ADD_SUB_ONNX_CONFIG, add_onnx_model
from tritonlite import InferenceEngine
from tritonlite.errors import UnavailableError

redis = pytest.importorskip("redis", reason="the redis client is not installed (pip install 'tritonlite[redis]')")
REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (Debian package redis-server)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    add_onnx_model(root, "cached", config=ADD_SUB_ONNX_CONFIG.format(name="cached") + "response_cache { enable: true }")
    return root


def _counts(engine: InferenceEngine) -> tuple[int, int, int]:
    s = engine.model_statistics("cached")["model_stats"][0]
    return s["inference_stats"]["cache_hit"]["count"], s["inference_stats"]["cache_miss"]["count"], s["execution_count"]


def test_two_engines_share_responses_through_redis(repo: Path, redis_port: int) -> None:
    config = {"redis": {"host": "127.0.0.1", "port": str(redis_port), "db": "0", "pool_size": "2",
                        "connect_timeout": "2000", "socket_timeout": "2000", "wait_timeout": "1000"}}
    x = {"INPUT0": np.full((1, 16), 7.5, dtype=np.float32), "INPUT1": np.arange(16, dtype=np.float32).reshape(1, 16)}
    with InferenceEngine(repo, cache_config=config) as first:
        computed = first.infer("cached", x)
        assert _counts(first) == (0, 1, 1)
    with InferenceEngine(repo, cache_config=config) as second:  # a fresh engine, as after a restart
        hit = second.infer("cached", x, outputs=["OUTPUT0", "OUTPUT1"])
        assert _counts(second) == (1, 0, 0)
        for name in ("OUTPUT0", "OUTPUT1"):
            assert hit.outputs[name].dtype == np.float32 and hit.outputs[name].shape == (1, 16)
            np.testing.assert_array_equal(hit.outputs[name], computed.outputs[name])
        assert "nv_cache_num_hits_per_model" in second.metrics()
        assert "nv_cache_util" not in second.metrics()  # Triton's redis cache publishes no gauges
    keys = redis.Redis(host="127.0.0.1", port=redis_port).keys("tritonlite:*")
    assert len(keys) == 1


def test_unreachable_redis_fails_engine_creation_and_redis_going_away_falls_back_to_running(
    repo: Path, tmp_path: Path
) -> None:
    port = _free_port()
    with pytest.raises(UnavailableError, match=rf"^Failed to initialize RedisCache: cannot reach redis at 127.0.0.1:{port}: "):
        InferenceEngine(repo, cache_config={"redis": {"host": "127.0.0.1", "port": port, "connect_timeout": 500}})
    proc = subprocess.Popen([REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
                time.sleep(0.05)
        client.close()
        config = {"redis": {"host": "127.0.0.1", "port": port, "connect_timeout": 500, "socket_timeout": 500}}
        with InferenceEngine(repo, cache_config=config) as engine:
            x = {"INPUT0": np.ones((1, 16), dtype=np.float32), "INPUT1": np.ones((1, 16), dtype=np.float32)}
            engine.infer("cached", x)
            engine.infer("cached", x)
            assert _counts(engine) == (1, 1, 1)
            proc.terminate()
            proc.wait(timeout=10)
            for _ in range(2):  # Redis is gone: requests still succeed, computed by the model
                assert engine.infer("cached", x).outputs["OUTPUT0"].tolist() == [[2.0] * 16]
            assert _counts(engine)[2] == 3
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=10)
