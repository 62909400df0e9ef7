"""Raw HTTP helpers for the server tests (``http.client`` and plain sockets, every wait bounded)."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any


def request(url: str, method: str, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None,
            timeout: float = 20.0) -> tuple[int, dict[str, str], bytes]:
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def error_of(data: bytes) -> str:
    doc = json.loads(data)
    assert set(doc) == {"error"}, doc
    return doc["error"]


def send_raw(url: str, payload: bytes, *, timeout: float = 10.0, shutdown_write: bool = False) -> bytes:
    """Send bytes on a fresh socket and read until the server closes (or the timeout)."""
    host, port = url.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(payload)
        if shutdown_write:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read exactly one Content-Length framed response from a keep-alive socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed after {buf!r}")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-body")
        rest += chunk
    assert len(rest) == length, "more bytes than one response"
    return status, headers, rest


def infer_json(inputs: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()
