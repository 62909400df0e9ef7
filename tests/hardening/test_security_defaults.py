"""Security defaults: loopback binding unless told otherwise, client shared memory off by default and
confined to regions a client registered, repository file uploads only in explicit mode and only
inside the model's own folder."""

from __future__ import annotations

import base64
import http.client
import inspect
import json
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from model_repos import IDENTITY_PY, identity_py_config, write_model
from tritonlite import InferenceEngine
from tritonlite.errors import TritonLiteError


def _request(url: str, method: str, path: str, doc: Any = None) -> tuple[int, Any]:
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=b"" if doc is None else json.dumps(doc).encode())
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data else None)
    finally:
        conn.close()


def test_cli_binds_loopback_by_default() -> None:
    from tritonlite.cli import build_parser

    args = build_parser().parse_args(["serve", "--model-repository", "/models"])
    assert (args.http_address, args.grpc_address, args.metrics_address) == ("127.0.0.1", "127.0.0.1", "127.0.0.1")
    assert args.allow_client_shm is False
    assert build_parser().parse_args(["serve", "--model-repository", "m", "--http-address", "0.0.0.0"]).http_address == "0.0.0.0"


def test_servers_and_serve_functions_bind_loopback_by_default() -> None:
    from tritonlite.grpc import GrpcServer
    from tritonlite.grpc import server as grpc_server
    from tritonlite.http import HttpServer
    from tritonlite.http import server as http_server

    for fn in (HttpServer.__init__, GrpcServer.__init__, http_server.serve, grpc_server.serve):
        params = inspect.signature(fn).parameters
        assert params["host"].default == "127.0.0.1", fn
        if "allow_shm" in params:
            assert params["allow_shm"].default is False, fn


def test_serve_prints_the_loopback_address(tmp_path: Path) -> None:
    from served import ServedProcess

    write_model(tmp_path / "m", "identity", identity_py_config("identity"), {"1/model.py": IDENTITY_PY})
    with ServedProcess(tmp_path / "m", ["--allow-grpc", "false"]) as proc:
        assert any(f"Started HTTPService at 127.0.0.1:{proc.ports['HTTPService']}" in line for line in proc.output)
        # the listening socket is on loopback only (/proc/net/tcp: local address 0100007F = 127.0.0.1)
        port_hex = f"{proc.ports['HTTPService']:04X}"
        with open("/proc/net/tcp") as fh:
            listening = [line.split()[1] for line in fh if line.split()[3] == "0A"]
        assert f"0100007F:{port_hex}" in listening and f"00000000:{port_hex}" not in listening


@pytest.fixture
def shm_servers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two HTTP servers over one engine: shm left at its default, and shm allowed."""
    from tritonlite.http import HttpServer

    write_model(tmp_path / "m", "identity", identity_py_config("identity"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path / "m") as engine, HttpServer(engine) as default, HttpServer(engine, allow_shm=True) as allowed:
        yield f"127.0.0.1:{default.port}", f"127.0.0.1:{allowed.port}"


def test_client_shm_is_off_by_default(shm_servers: tuple[str, str]) -> None:
    default, _ = shm_servers
    status, doc = _request(default, "POST", "/v2/systemsharedmemory/region/r/register", {"key": "/tl_sec", "byte_size": 16})
    from tritonlite.protocol.shm import SHM_DISABLED

    assert (status, doc) == (501, {"error": SHM_DISABLED})


def test_grpc_client_shm_is_off_by_default(tmp_path: Path) -> None:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from tritonlite.grpc import GrpcServer

    write_model(tmp_path / "m", "identity", identity_py_config("identity"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path / "m") as engine, GrpcServer(engine) as server:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.port}")
        with pytest.raises(InferenceServerException) as info:
            client.register_system_shared_memory("r", "/tl_sec", 16)
        from tritonlite.protocol.shm import SHM_DISABLED

        assert info.value.message() == SHM_DISABLED
        client.close()


def test_infer_can_only_use_regions_the_client_registered(shm_servers: tuple[str, str]) -> None:
    from multiprocessing import shared_memory

    _, allowed = shm_servers
    seg = shared_memory.SharedMemory(f"tl_sec_{os.getpid()}", create=True, size=64)
    try:
        doc = {"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32",
                           "parameters": {"shared_memory_region": "never_registered", "shared_memory_byte_size": 16}}]}
        status, body = _request(allowed, "POST", "/v2/models/identity/infer", doc)
        assert (status, body) == (404, {"error": "Unable to find shared memory region: 'never_registered'"})
        # registering needs an existing key; a made-up key is refused, never created (Triton answers INTERNAL here)
        missing = f"/tl_sec_missing_{os.getpid()}"
        status, body = _request(allowed, "POST", "/v2/systemsharedmemory/region/bogus/register", {"key": missing, "byte_size": 16})
        assert (status, body) == (500, {"error": f"Unable to open shared memory region: '{missing}'"})
        assert not os.path.exists(f"/dev/shm{missing}")
        status, body = _request(allowed, "POST", "/v2/systemsharedmemory/region/dots/register", {"key": "/../etc/passwd", "byte_size": 1})
        assert (status, body) == (400, {"error": "Unable to open shared memory region: '/../etc/passwd'"})
        status, _ = _request(allowed, "POST", "/v2/systemsharedmemory/region/mine/register", {"key": f"/{seg.name}", "byte_size": 64})
        assert status == 200
        doc["inputs"][0]["parameters"]["shared_memory_region"] = "mine"
        status, body = _request(allowed, "POST", "/v2/models/identity/infer", doc)
        assert status == 200, body
        # a byte range past the registered region is refused
        doc["inputs"][0]["parameters"].update(shared_memory_offset=60)
        status, body = _request(allowed, "POST", "/v2/models/identity/infer", doc)
        assert status == 400, body
        assert _request(allowed, "POST", "/v2/systemsharedmemory/region/mine/unregister")[0] == 200
    finally:
        seg.close()
        seg.unlink()


_CONFIG = json.dumps({"name": "uploaded", "backend": "python", "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [4]}],
                      "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]}]})


def _files(path: str) -> dict[str, Any]:
    return {"parameters": {"config": _CONFIG, f"file:{path}": base64.b64encode(IDENTITY_PY.encode()).decode()}}


def test_file_uploads_refused_outside_explicit_mode(tmp_path: Path) -> None:
    from tritonlite.http import HttpServer

    write_model(tmp_path / "m", "identity", identity_py_config("identity"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path / "m") as engine, HttpServer(engine) as server:
        status, doc = _request(f"127.0.0.1:{server.port}", "POST", "/v2/repository/models/uploaded/load", _files("1/model.py"))
        assert status in (400, 503) and "explicit" in doc["error"].lower(), doc
    assert not (tmp_path / "m" / "uploaded").exists()


@pytest.mark.parametrize("path", ["../escape.py", "1/../../escape.py", "/tmp/escape.py", ""])
def test_file_uploads_confined_to_the_model_folder(tmp_path: Path, path: str) -> None:
    from tritonlite.http import HttpServer

    write_model(tmp_path / "m", "identity", identity_py_config("identity"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path / "m", model_control_mode="explicit") as engine, HttpServer(engine) as server:
        status, doc = _request(f"127.0.0.1:{server.port}", "POST", "/v2/repository/models/uploaded/load", _files(path))
        # Triton's poll-failure answer (INTERNAL), with the reason after the colon
        assert (status, doc) == (500, {"error": "failed to load 'uploaded', failed to poll from model repository: "
                                                f"file path '{Path(path)}' escapes the model directory"})
        # a well-formed upload still works afterwards
        status, doc = _request(f"127.0.0.1:{server.port}", "POST", "/v2/repository/models/uploaded/load", _files("1/model.py"))
        assert status == 200, doc
    assert not (tmp_path / "escape.py").exists() and not Path("/tmp/escape.py").exists()


def test_file_uploads_never_write_through_a_repository_symlink(tmp_path: Path) -> None:
    """The repository's model folder has a version directory that is a symlink to somewhere else:
    uploaded files go to the load's own private folder, never through the link."""
    outside = tmp_path / "outside"
    outside.mkdir()
    model_dir = write_model(tmp_path / "m", "uploaded", None)
    (model_dir / "1").symlink_to(outside, target_is_directory=True)
    with InferenceEngine(tmp_path / "m", model_control_mode="explicit") as engine:
        engine.load_model("uploaded", config=_CONFIG, files={"file:1/model.py": IDENTITY_PY.encode()})
        assert engine.is_model_ready("uploaded")
        with pytest.raises(TritonLiteError, match="escapes the model directory"):
            engine.load_model("uploaded", config=_CONFIG, files={"file:../x.py": b""})
    assert list(outside.iterdir()) == []
