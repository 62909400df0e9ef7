"""Fixtures for the HTTP server tests: one model repository, an engine and an HTTP server on a
127.0.0.1 free port (module scope, client shared memory on). Tests that need another configuration
start their own server. Names carry an ``http_`` prefix so gRPC test modules can define their own.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_models import HTTP_TEST_MAX_INPUT, build_repo  # noqa: E402

from tritonlite import InferenceEngine  # noqa: E402


@pytest.fixture(scope="session")
def http_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_repo(tmp_path_factory.mktemp("http_repo") / "models")


@pytest.fixture(scope="module")
def http_engine(http_repo: Path) -> Iterator[InferenceEngine]:
    with InferenceEngine(http_repo) as eng:
        yield eng


@pytest.fixture(scope="module")
def http_server(http_engine: InferenceEngine) -> Iterator[Any]:
    from tritonlite.http import HttpServer

    with HttpServer(http_engine, "127.0.0.1", 0, allow_shm=True, max_input_size=HTTP_TEST_MAX_INPUT) as server:
        yield server


@pytest.fixture(scope="module")
def http_url(http_server: Any) -> str:
    return f"127.0.0.1:{http_server.port}"


@pytest.fixture
def http_client(http_url: str) -> Iterator[Any]:
    import tritonclient.http as httpclient

    c = httpclient.InferenceServerClient(http_url, network_timeout=30.0, connection_timeout=10.0)
    yield c
    c.close()
