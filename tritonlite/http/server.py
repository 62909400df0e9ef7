"""``HttpServer``: the KServe v2 HTTP door, with its own event loop in one owned, named thread.

    with HttpServer(engine, port=0) as server:   # port 0: any free port
        print(server.port)

``stop()`` stops accepting, lets in-flight requests finish (bounded by ``drain_timeout``), closes
the connections and joins the thread. ``serve()`` runs a server in the foreground until SIGINT or
SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
from typing import Any

from tritonlite.http.connection import HttpConnection
from tritonlite.http.routes import HttpApp
from tritonlite.protocol.loop import start_loop_thread

DEFAULT_MAX_INPUT_SIZE = 64 * 1024 * 1024
#: a model whose requests compute faster than this on average runs on the event loop's thread when an
#: instance is idle (two thread hand-offs cost more than such a model); 0 turns it off
DEFAULT_INLINE_COMPUTE_US = 100.0


class HttpServer:
    """Non-blocking HTTP server over an :class:`~tritonlite.engine.InferenceEngine`.

    ``inline_compute_us``: infer requests of a model that has so far computed in less than this
    (mean, µs) run on the server's event-loop thread when one of its instances is idle, instead of
    being handed to the instance thread and back (default scheduler only; batching schedulers
    always queue). 0 disables it.
    """

    def __init__(
        self,
        engine: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_input_size: int = DEFAULT_MAX_INPUT_SIZE,
        allow_shm: bool = False,
        backlog: int = 1024,
        reuse_port: bool = False,
        inline_compute_us: float = DEFAULT_INLINE_COMPUTE_US,
    ) -> None:
        self.engine = engine
        self.inline_compute_us = float(inline_compute_us)
        self.host = host
        self.requested_port = int(port)
        self.max_input_size = int(max_input_size)
        self.allow_shm = allow_shm
        self.backlog = backlog
        #: SO_REUSEPORT: worker processes (``tritonlite serve --workers``) share the port
        self.reuse_port = reuse_port
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[HttpConnection] = set()
        self._stop_future: asyncio.Future | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> "HttpServer":
        if self._thread is not None:
            raise RuntimeError("HttpServer already started")
        app = HttpApp(self.engine, max_input_size=self.max_input_size, allow_shm=self.allow_shm,
                      inline_compute_us=self.inline_compute_us)
        self._thread, self._loop = start_loop_thread(f"tritonlite.http.server:{self.requested_port}",
                                                     lambda ready: self._serve(app, ready))
        return self

    async def _serve(self, app: HttpApp, ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self._stop_future = loop.create_future()
        max_body = self.max_input_size
        conns = self._connections
        heads: dict = {}  # response-head prefixes, shared by this server's connections
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, self.requested_port))
        self._server = await loop.create_server(lambda: HttpConnection(app, max_body, conns, heads), sock=sock, backlog=self.backlog)
        self.port = sock.getsockname()[1]
        ready.set()
        drain_timeout = await self._stop_future
        # stop accepting, finish in-flight requests, close idle keep-alive connections
        self._server.close()
        for conn in list(conns):
            conn.shutdown()
        deadline = loop.time() + drain_timeout
        while conns and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(conns):
            conn.abort()
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(self._server.wait_closed(), timeout=1.0)
        except asyncio.TimeoutError:  # pragma: no cover
            pass

    def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop accepting, drain in-flight requests (at most ``drain_timeout`` s), join the thread."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        fut = self._stop_future

        def signal_stop() -> None:
            if fut is not None and not fut.done():
                fut.set_result(max(0.0, float(drain_timeout)))

        try:
            loop.call_soon_threadsafe(signal_stop)
        except RuntimeError:  # loop already closed
            pass
        thread.join()
        self._thread = None
        self._loop = None

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "HttpServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    engine_or_repository: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_input_size: int = DEFAULT_MAX_INPUT_SIZE,
    allow_shm: bool = False,
    exit_timeout_secs: float = 30.0,
    inline_compute_us: float = DEFAULT_INLINE_COMPUTE_US,
    **engine_options: Any,
) -> None:
    """Serve over HTTP until SIGINT/SIGTERM (blocking). A repository path builds (and closes) an engine."""
    from tritonlite.engine import InferenceEngine

    owned = isinstance(engine_or_repository, (str, os.PathLike, list, tuple))
    engine = InferenceEngine(engine_or_repository, **engine_options) if owned else engine_or_repository
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    server = HttpServer(engine, host, port, max_input_size=max_input_size, allow_shm=allow_shm, inline_compute_us=inline_compute_us)
    try:
        server.start()
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(exit_timeout_secs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if owned:
            engine.close()


__all__ = ["HttpServer", "serve", "DEFAULT_MAX_INPUT_SIZE", "DEFAULT_INLINE_COMPUTE_US"]
