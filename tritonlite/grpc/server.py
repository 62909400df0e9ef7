"""The gRPC door and the blocking :func:`serve`.

    with GrpcServer(engine, port=0, allow_shm=True) as server:
        client = tritonclient.grpc.InferenceServerClient(f"127.0.0.1:{server.port}")

Two fronts serve the same :class:`InferenceServicer`:

- ``frontend="native"`` (default): tritonlite's own HTTP/2 connection on one event-loop thread
  (:mod:`tritonlite.grpc.native`); inference never crosses a server thread, other RPCs run in a pool
  of ``worker_threads``. Measured 3-4x grpcio's throughput on one core (benchmarks/README.md).
- ``frontend="grpcio"``: grpcio's synchronous server. Handlers run on a pool of worker threads named
  ``tritonlite.grpc.worker_N``; ``ModelInfer`` runs the model inline there when an instance is idle.
  Each open ``ModelStreamInfer`` call holds one worker and one reader thread for its lifetime, so
  ``worker_threads`` bounds the concurrent streams plus in-flight unary calls; ``options`` are extra
  ``grpc.server`` channel arguments.

``stop()`` lets in-flight calls finish for ``grace`` seconds, cancels the rest and joins every thread
the server started.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import signal
import threading
from typing import Any, Mapping

import grpc

from tritonlite.engine import InferenceEngine
from tritonlite.errors import InvalidArgumentError, UnavailableError
from tritonlite.grpc.servicer import HEALTH_SERVICE, SERVICE, InferenceServicer

_log = logging.getLogger("tritonlite.grpc")

#: Triton's limit (INT32_MAX); tritonclient sets the same on its channels
MAX_MESSAGE_BYTES = 2**31 - 1
#: the implementations behind :class:`GrpcServer`
FRONTENDS = ("native", "grpcio")


class GrpcServer:
    """A KServe v2 / Triton gRPC server for ``engine`` on ``host:port`` (``port=0``: any free port).

    ``allow_shm`` enables client shared memory registration (Triton's ``--allow-client-shm``).
    ``frontend``: ``"native"`` or ``"grpcio"`` (see the module docstring); ``reuse_port`` sets
    SO_REUSEPORT (worker processes share the port); ``inline_compute_us`` as for the HTTP server
    (native front only).
    """

    def __init__(
        self,
        engine: InferenceEngine,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        allow_shm: bool = False,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        worker_threads: int = 64,
        options: Mapping[str, Any] | None = None,
        frontend: str = "native",
        reuse_port: bool = False,
        inline_compute_us: float = 100.0,
    ) -> None:
        if frontend not in FRONTENDS:
            raise InvalidArgumentError(f"unknown gRPC frontend '{frontend}': expected one of {', '.join(FRONTENDS)}")
        self.engine = engine
        self.host = host
        self.requested_port = int(port)
        self.allow_shm = allow_shm
        self.max_message_bytes = int(max_message_bytes)
        self.worker_threads = max(2, int(worker_threads))
        self.extra_options = dict(options or {})
        self.frontend = frontend
        self.reuse_port = bool(reuse_port)
        self.inline_compute_us = float(inline_compute_us)
        self._native: Any = None
        self._port: int | None = None
        self._server: grpc.Server | None = None
        self._servicer: InferenceServicer | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._stopped = threading.Event()
        self._lock = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (known after :meth:`start`)."""
        if self._port is None:
            raise UnavailableError("the gRPC server is not started")
        return self._port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "GrpcServer":
        """Bind and start serving; returns once the port is bound (a bind failure is raised here)."""
        with self._lock:
            if self._server is not None or self._native is not None:
                return self
            if self.frontend == "native":
                self._start_native()
                return self
            base = {
                "grpc.max_send_message_length": self.max_message_bytes,
                "grpc.max_receive_message_length": self.max_message_bytes,
                "grpc.so_reuseport": int(self.reuse_port),  # a port in use is an error unless shared on purpose
            }
            options = list({**base, **self.extra_options}.items())
            executor = concurrent.futures.ThreadPoolExecutor(self.worker_threads, thread_name_prefix="tritonlite.grpc.worker")
            server = grpc.server(executor, options=options)
            servicer = InferenceServicer(self.engine, allow_shm=self.allow_shm)
            handlers = servicer.handlers()
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
            server.add_registered_method_handlers(SERVICE, handlers)
            server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(HEALTH_SERVICE, servicer.health_handlers()),))
            server.add_generic_rpc_handlers((_UnknownMethods(),))  # consulted last
            target = f"[{self.host}]:{self.requested_port}" if ":" in self.host else f"{self.host}:{self.requested_port}"
            try:
                port = server.add_insecure_port(target)
            except RuntimeError as exc:
                port, detail = 0, f": {exc}"
            else:
                detail = ""
            if port == 0:
                server.stop(None)
                executor.shutdown(wait=True)
                raise UnavailableError(f"failed to bind the gRPC server to {target}{detail}")
            server.start()
            self._server, self._executor, self._port, self._servicer = server, executor, port, servicer
            self._stopped.clear()
        return self

    def _start_native(self) -> None:
        from tritonlite.grpc.native import NativeGrpcFront

        front = NativeGrpcFront(self.engine, self.host, self.requested_port, allow_shm=self.allow_shm,
                                max_message_bytes=self.max_message_bytes, worker_threads=min(self.worker_threads, 8),
                                reuse_port=self.reuse_port, inline_compute_us=self.inline_compute_us)
        try:
            front.start()
        except OSError as exc:
            target = f"[{self.host}]:{self.requested_port}" if ":" in self.host else f"{self.host}:{self.requested_port}"
            raise UnavailableError(f"failed to bind the gRPC server to {target}: {exc.strerror or exc}") from None
        self._native, self._port = front, front.port
        self._stopped.clear()

    def stop(self, grace: float | None = 5.0) -> None:
        """Stop accepting calls, let in-flight ones finish for ``grace`` seconds, then cancel them."""
        with self._lock:
            native, self._native = self._native, None
        if native is not None:
            native.stop(grace)
            self._stopped.set()
            return
        with self._lock:
            server, executor = self._server, self._executor
            self._server = self._executor = None
        if server is None:
            return
        server.stop(grace).wait()
        if executor is not None:
            executor.shutdown(wait=True)
        if self._servicer is not None:
            self._servicer.join_readers()
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops (or ``timeout``); True when it stopped."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> "GrpcServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self._port}" if self._port is not None else "not started"
        return f"GrpcServer({where})"


def _unimplemented(requests: Any, context: grpc.ServicerContext) -> Any:
    context.abort(grpc.StatusCode.UNIMPLEMENTED, "")


class _UnknownMethods(grpc.GenericRpcHandler):
    """Any other method: UNIMPLEMENTED with no message, as Triton (grpc++) answers, not grpcio's "Method not found!"."""

    _handler = grpc.stream_stream_rpc_method_handler(_unimplemented)

    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler:
        return self._handler


_SERVER_OPTIONS = ("allow_shm", "max_message_bytes", "worker_threads", "options", "frontend", "reuse_port", "inline_compute_us")


def serve(
    engine_or_repository: InferenceEngine | str | os.PathLike[str] | list[Any],
    host: str = "127.0.0.1",
    port: int = 8001,
    *,
    exit_timeout_secs: float = 30.0,
    **options: Any,
) -> None:
    """Serve gRPC until SIGINT/SIGTERM, then drain in-flight requests (``exit_timeout_secs``) and return.

    ``engine_or_repository`` is an engine or model repository path(s); with a path, options that are
    not server options (``allow_shm``, ``max_message_bytes``, ``worker_threads``, ``options``) go to
    :class:`~tritonlite.InferenceEngine` (e.g. ``model_control_mode``), and the engine is closed at the end.
    """
    server_opts = {k: options.pop(k) for k in list(options) if k in _SERVER_OPTIONS}
    owns_engine = not isinstance(engine_or_repository, InferenceEngine)
    if owns_engine:
        engine = InferenceEngine(engine_or_repository, **options)  # type: ignore[arg-type]
    else:
        if options:
            raise InvalidArgumentError(f"unexpected options for an existing engine: {sorted(options)}")
        engine = engine_or_repository  # type: ignore[assignment]
    stop = threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    server = GrpcServer(engine, host, port, **server_opts)
    try:
        server.start()
        _log.debug("gRPC server listening on %s:%d", host, server.port)
        while not stop.wait(0.5):
            if server.wait(0):
                break
    finally:
        server.stop(grace=exit_timeout_secs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if owns_engine:
            engine.close()


__all__ = ["GrpcServer", "serve", "MAX_MESSAGE_BYTES", "FRONTENDS"]
