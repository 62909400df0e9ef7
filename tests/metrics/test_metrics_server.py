"""The /metrics endpoint: MetricsServer and the blocking serve() helper, scraped over HTTP."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine
from tritonlite.metrics import MetricsServer, serve


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_endpoint_serves_the_engine_text(repo: Path, scrape, no_thread_leak) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo) as engine:
        for _ in range(3):
            engine.infer("identity_py", {"INPUT0": np.ones(4, np.float32)})
        with MetricsServer(engine) as server:
            assert server.port > 0 and server.host == "127.0.0.1"
            assert "tritonlite.metrics.http" in no_thread_leak()
            status, ctype, body = get(server.url)
            assert status == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8"
            m = scrape(body)
            assert m.value("nv_inference_request_success", model="identity_py", version="1") == 3
            assert m.type("nv_inference_request_success") == "counter"
            assert {f for f in m.families if f.startswith("nv_inference")} == {
                f for f in scrape(engine).families if f.startswith("nv_inference")}
            assert get(f"http://127.0.0.1:{server.port}/v2/health/ready")[0] == 404
            port = server.port
        assert "tritonlite.metrics.http" not in no_thread_leak()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert no_thread_leak() == []


def test_start_stop_are_idempotent(repo: Path) -> None:
    with InferenceEngine(repo, metrics=False) as engine:
        server = MetricsServer(engine, port=0)
        server.stop()  # never started: nothing to do
        server.start()
        server.start()
        status, _, body = get(server.url)
        assert status == 503 and "metrics are disabled" in body
        server.stop()
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_helper_blocks_until_stopped(repo: Path, scrape, no_thread_leak) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    stop = threading.Event()
    with InferenceEngine(repo) as engine:
        runner = threading.Thread(target=serve, args=(engine, port), kwargs={"host": "127.0.0.1", "stop": stop})
        runner.start()
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    status, _, body = get(f"http://127.0.0.1:{port}/metrics")
                    break
                except urllib.error.URLError:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            assert status == 200
            assert scrape(body).models() == {"add_sub_onnx", "identity_py", "raising_py"}
        finally:
            stop.set()
            runner.join(10)
        assert not runner.is_alive()
    assert no_thread_leak() == []
