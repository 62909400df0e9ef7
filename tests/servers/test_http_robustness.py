"""Bad input and connection handling over raw sockets: malformed JSON and HTTP, wrong lengths,
truncated binary bodies, oversize bodies, chunked bodies, keep-alive, pipelining, many connections,
and a client that disconnects mid-request (its request is cancelled). Every wait is bounded."""

from __future__ import annotations

import json
import re
import socket
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


import pytest

from http_models import HTTP_TEST_MAX_INPUT
from http_raw import error_of, read_response, request, send_raw

IDENT = "/v2/models/identity_py/infer"
GOOD = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode()


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def _connect(url: str) -> socket.socket:
    host, port = url.split(":")
    s = socket.create_connection((host, int(port)), timeout=20)
    return s


@pytest.mark.parametrize(
    "body,fragment",
    [
        (b"{not json", "failed to parse the request JSON buffer"),
        (b"", "input byte size mismatch"),  # an empty body is a raw request, as in Triton
        (b"[1, 2]", "Unable to parse 'inputs'"),
        (b'{"inputs": 5}', "Unable to parse 'inputs'"),
        (b'{"inputs": [{"name": "INPUT0", "datatype": "FP32", "data": [1]}]}', "Unable to parse 'shape'"),
        (b'{"inputs": [{"name": "INPUT0", "shape": [-4], "datatype": "FP32", "data": [1]}]}', "Unable to parse 'shape'"),
        (b'{"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP99", "data": [1]}]}', "invalid datatype"),
        (b'{"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2]}]}', "Shape does not match"),
        (b'{"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32"}]}', "Input must set only one of"),
        (b'{"id": 5, "inputs": []}', "Unable to parse 'id'"),
        (b'{"inputs": [{"name": 7, "shape": [4], "datatype": "FP32", "data": [1,2,3,4]}]}', "Unable to parse 'name'"),
        (b'{"inputs": [], "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": 1}}]}', "binary_data"),
        (b'{"inputs": [], "parameters": []}', "failed to get request params."),
        (b"\xff\xfe{}", "failed to parse the request JSON buffer"),
        (b"[" * 5000 + b"]" * 5000, "failed to parse the request JSON buffer"),
    ],
)
def test_malformed_infer_bodies_are_400(http_url: str, body: bytes, fragment: str) -> None:
    status, headers, data = request(http_url, "POST", IDENT, body)
    assert status == 400 and headers["content-type"] == "application/json"
    assert fragment in error_of(data)


def test_deeply_nested_data_is_refused(http_url: str) -> None:
    data = 1.0
    for _ in range(120):
        data = [data]
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": data}]}).encode()
    status, _, resp = request(http_url, "POST", "/v2/models/var_py/infer", body)
    assert status == 400


def test_connection_survives_an_error(http_url: str) -> None:
    with _connect(http_url) as s:
        s.sendall(_post(IDENT, b"{broken"))
        status, _, body = read_response(s)
        assert status == 400 and "failed to parse" in error_of(body)
        s.sendall(_post(IDENT, GOOD))
        status, _, body = read_response(s)
        assert status == 200 and json.loads(body)["outputs"][0]["data"] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "ihcl,binary_size,payload,fragment",
    [
        # as Triton 2.51: no header reads the body as JSON (up to a NUL), a non-number header as 0 (raw body)
        (None, 16, b"\0" * 16, "unexpected size for input 'INPUT0', expecting 16 additional bytes"),
        (None, 16, b"", "unexpected size for input 'INPUT0', expecting 16 additional bytes"),
        ("abc", 16, b"\0" * 16, "input byte size mismatch"),
        ("-3", 16, b"\0" * 16, "inference header size should be in range"),
        ("99999", 16, b"\0" * 16, "inference header size should be in range"),
        ("HDR", 16, b"\0" * 10, "unexpected size for input 'INPUT0', expecting 6 additional bytes"),
        ("HDR", 16, b"\0" * 20, "unexpected additional input data for model 'identity_py'"),
        ("HDR", 12, b"\0" * 12, "input byte size mismatch"),
        ("HDR", -1, b"", "binary_data_size"),
    ],
)
def test_binary_framing_errors(http_url: str, ihcl: str | None, binary_size: int, payload: bytes, fragment: str) -> None:
    header = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32",
                                     "parameters": {"binary_data_size": binary_size}}]}).encode()
    headers = {} if ihcl is None else {"Inference-Header-Content-Length": str(len(header)) if ihcl == "HDR" else ihcl}
    status, _, data = request(http_url, "POST", IDENT, header + payload, headers)
    assert status == 400 and fragment in error_of(data), data


def test_content_length_shorter_than_the_body(http_url: str) -> None:
    raw = f"POST {IDENT} HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n".encode() + GOOD
    out = send_raw(http_url, raw)
    first = out.split(b"\r\n", 1)[0]
    assert first.startswith(b"HTTP/1.1 400")  # the first 10 bytes are not JSON
    assert out.count(b"HTTP/1.1 400") == 2  # the rest is not HTTP: 400, then the server closes


def test_content_length_longer_than_the_body(http_url: str) -> None:
    raw = f"POST {IDENT} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(GOOD) + 50}\r\n\r\n".encode() + GOOD
    out = send_raw(http_url, raw, shutdown_write=True)
    assert out.startswith(b"HTTP/1.1 400") and b"incomplete HTTP request" in out


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /v2 HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        b"POST /v2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /v2 HTTP/9.9\r\n\r\n",
        b"GET /v2 HTTP/1.1\r\n" + b"X-Big: " + b"a" * (2 * 1024 * 1024) + b"\r\n\r\n",
    ],
)
def test_malformed_http_is_400_and_closed(http_url: str, raw: bytes) -> None:
    out = send_raw(http_url, raw)
    assert out.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in out
    assert b'{"error":' in out


def test_body_over_max_input_size(http_url: str) -> None:
    big = b"{" + b" " * (HTTP_TEST_MAX_INPUT + 10) + b"}"
    with _connect(http_url) as s:
        s.sendall(_post(IDENT, big))
        status, _, body = read_response(s)
        assert status == 400 and "exceeds the maximum allowed value" in error_of(body)
        assert "--http-max-input-size" in error_of(body)
        s.sendall(_post(IDENT, GOOD))  # the connection is still usable
        assert read_response(s)[0] == 200


def test_chunked_body_over_max_input_size(http_url: str) -> None:
    chunk = b" " * (1024 * 1024)
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    raw = f"POST {IDENT} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + body
    out = send_raw(http_url, raw, shutdown_write=True)
    assert out.startswith(b"HTTP/1.1 400") and b"exceeds the maximum allowed value" in out


def test_decompressed_body_over_max_input_size(http_url: str) -> None:
    bomb = zlib.compress(b" " * (HTTP_TEST_MAX_INPUT + 1024))
    status, _, data = request(http_url, "POST", IDENT, bomb, {"Content-Encoding": "deflate"})
    assert status == 400 and "exceeds the maximum allowed value" in error_of(data)


def test_chunked_request_body_and_expect_continue(http_url: str) -> None:
    parts = [GOOD[:10], GOOD[10:]]
    body = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in parts) + b"0\r\n\r\n"
    with _connect(http_url) as s:
        s.sendall(f"POST {IDENT} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + body)
        status, _, data = read_response(s)
        assert status == 200 and json.loads(data)["outputs"][0]["data"] == [1, 2, 3, 4]
        s.sendall(f"POST {IDENT} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(GOOD)}\r\nExpect: 100-continue\r\n\r\n".encode())
        interim = s.recv(64)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        s.sendall(GOOD)
        assert read_response(s)[0] == 200


def test_keep_alive_pipelining_and_close(http_url: str) -> None:
    with _connect(http_url) as s:
        s.sendall(_post(IDENT, GOOD) + b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n" + _post(IDENT, b"{bad"))
        buf = b""
        deadline = time.monotonic() + 20
        while buf.count(b"HTTP/1.1 ") < 3 and time.monotonic() < deadline:
            buf += s.recv(65536)
        statuses = [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", buf)]
        assert statuses == [200, 200, 400]  # answered in request order
        s.sendall(b"GET /v2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        rest = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        assert rest.startswith(b"HTTP/1.1 200") and b"Connection: close" in rest
    out = send_raw(http_url, b"GET /v2 HTTP/1.0\r\n\r\n")  # HTTP/1.0 without keep-alive: closed after the answer
    assert out.startswith(b"HTTP/1.1 200") and out.endswith(b"}")


def test_many_concurrent_connections(http_url: str) -> None:
    socks = [_connect(http_url) for _ in range(200)]
    try:
        for s in socks:
            s.sendall(_post(IDENT, GOOD))
        for s in socks:
            assert read_response(s)[0] == 200
    finally:
        for s in socks:
            s.close()


def test_slow_request_does_not_block_other_connections(http_url: str) -> None:
    slow = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [1]}]}).encode()
    with ThreadPoolExecutor(2) as pool:
        fut = pool.submit(request, http_url, "POST", "/v2/models/slow_py/infer", slow)
        time.sleep(0.05)
        t0 = time.monotonic()
        assert request(http_url, "GET", "/v2/health/ready")[0] == 200
        fast = time.monotonic() - t0
        assert fut.result(timeout=20)[0] == 200
    assert fast < 0.25  # answered while the 0.3 s request was still running


def _wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.01)
    raise AssertionError(f"{path} never appeared")


def test_disconnect_mid_infer_cancels_the_request(http_url: str, http_repo: Path) -> None:
    tag = 4242
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [tag]}]}).encode()
    s = _connect(http_url)
    s.sendall(_post("/v2/models/wait_cancel_py/infer", body))
    time.sleep(0.1)  # the model is now waiting inside execute
    s.close()
    assert _wait_for(http_repo / "wait_cancel_py" / f"cancel_{tag}") == "True"


def test_disconnect_mid_stream_cancels_the_request(http_url: str, http_repo: Path) -> None:
    body = json.dumps({"IN": [1, 2, 901]}).encode()
    s = _connect(http_url)
    s.sendall(_post("/v2/models/repeat/generate_stream", body))
    got = b""
    deadline = time.monotonic() + 10
    while got.count(b"data: ") < 2 and time.monotonic() < deadline:
        got += s.recv(65536)
    assert got.count(b"data: ") == 2
    s.close()
    assert _wait_for(http_repo / "repeat" / "cancel_901") == "True"


def test_server_stop_drains_in_flight_requests(http_engine: object) -> None:
    from tritonlite.http import HttpServer

    slow = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [1]}]}).encode()
    server = HttpServer(http_engine).start()
    url = f"127.0.0.1:{server.port}"
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(request, url, "POST", "/v2/models/slow_py/infer", slow)
        time.sleep(0.1)
        server.stop(drain_timeout=10)
        assert fut.result(timeout=20)[0] == 200  # finished, not cut off
    with pytest.raises(OSError):
        request(url, "GET", "/v2/health/live", timeout=2)
    assert not server.running


def test_bind_error_surfaces_in_start(http_server: object, http_engine: object) -> None:
    from tritonlite.http import HttpServer

    with pytest.raises(OSError):
        HttpServer(http_engine, "127.0.0.1", http_server.port).start()  # type: ignore[attr-defined]


def test_server_threads_are_joined(http_engine: object) -> None:
    import threading

    from tritonlite.http import HttpServer

    before = {t.name for t in threading.enumerate()}
    with HttpServer(http_engine) as server:
        assert request(f"127.0.0.1:{server.port}", "GET", "/v2/health/live")[0] == 200
    after = {t.name for t in threading.enumerate()}
    assert not [n for n in after - before if n.startswith("tritonlite.http")]

