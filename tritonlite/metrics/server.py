"""The ``/metrics`` endpoint: ``GET /metrics`` answers ``engine.metrics()`` as Prometheus text.

A stdlib ``ThreadingHTTPServer`` on its own thread (``tritonlite.metrics.http``), started and joined by
:class:`MetricsServer`; one connection per scrape (HTTP/1.0), which is all Prometheus needs.
``serve(engine, port)`` runs one until interrupted, for scripts.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tritonlite.metrics._text import CONTENT_TYPE

_log = logging.getLogger("tritonlite.metrics")


def _handler(engine: Any) -> type[BaseHTTPRequestHandler]:
    class MetricsHandler(BaseHTTPRequestHandler):
        server_version = "tritonlite-metrics"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if path.rstrip("/") != "/metrics":
                self._reply(404, b"Not Found\n", "text/plain; charset=utf-8")
                return
            try:
                body = engine.metrics().encode("utf-8")
            except Exception as exc:  # metrics disabled, engine gone: say so, keep serving
                self._reply(503, f"{exc}\n".encode("utf-8"), "text/plain; charset=utf-8")
                return
            self._reply(200, body, CONTENT_TYPE)

        def _reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            _log.debug("metrics endpoint: " + format, *args)

    return MetricsHandler


class MetricsServer:
    """Serves ``GET /metrics`` for ``engine`` on ``host:port`` (``port=0`` picks a free port: see ``.port``).

    ``start()`` binds and starts the thread, ``stop()`` closes the socket and joins it; also a context manager.
    """

    def __init__(self, engine: Any, host: str = "127.0.0.1", port: int = 0, *, reuse_port: bool = False) -> None:
        self.engine = engine
        #: SO_REUSEPORT: worker processes (``tritonlite serve --workers``) share the port
        self.reuse_port = reuse_port
        self.host = host
        self._requested_port = int(port)
        self._bound_port = int(port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the requested one until ``start``)."""
        return self._bound_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def start(self) -> "MetricsServer":
        if self._server is not None:
            return self
        server = ThreadingHTTPServer((self.host, self._requested_port), _handler(self.engine), bind_and_activate=False)
        try:
            server.allow_reuse_address = True
            if self.reuse_port:
                server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            server.server_bind()
            server.server_activate()
        except BaseException:
            server.server_close()
            raise
        server.daemon_threads = True
        self._server = server
        self._bound_port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="tritonlite.metrics.http", daemon=True)
        self._thread.start()
        _log.debug("metrics endpoint bound to %s:%d", self.host, self.port)  # the CLI prints "Started Metrics Service"
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> "MetricsServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(engine: Any, port: int = 8002, host: str = "0.0.0.0", stop: threading.Event | None = None) -> None:
    """Serve ``engine``'s metrics on ``host:port`` until ``stop`` is set or Ctrl-C (Triton's default port 8002)."""
    with MetricsServer(engine, host, port):
        try:
            (stop or threading.Event()).wait()
        except KeyboardInterrupt:
            pass


__all__ = ["MetricsServer", "serve"]
