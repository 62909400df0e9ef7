"""The gRPC door on tritonlite's own HTTP/2 connection (:mod:`tritonlite.grpc.h2`), one event loop thread.

``ModelInfer`` never leaves the event loop except for the model itself: the message is parsed and
decoded on the loop, submitted with a callback (:meth:`InferenceEngine._submit_unary`; models that
compute in well under a thread hand-off run inline on the loop when an instance is idle, like the HTTP
door), and completions come back through :class:`~tritonlite.protocol.loop.LoopCompletions`, which
wakes the loop once per burst: a batch of 16 finishes with one wake-up and one socket write.
``ModelStreamInfer`` feeds :class:`~tritonlite.grpc.stream.StreamSession` from the loop and writes its
responses from the loop. Every other RPC runs the shared :class:`InferenceServicer` method in a small
thread pool (they may block: model load, file I/O), so behaviour, errors and codes are the same code
as the grpcio front.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import logging
import threading
import time
import zlib
from typing import Any, Callable
from urllib.parse import quote

from tritonlite.errors import InternalError, TritonLiteError, UnsupportedError
from tritonlite.grpc import frontend_trace, h2
from tritonlite.grpc.codec import Malformed, decode_infer_request
from tritonlite.grpc.servicer import (
    DECOUPLED_UNARY,
    HEALTH_SERVICE,
    PARSE_ERROR,
    SERVICE,
    InferenceServicer,
    _deserializer,
)
from tritonlite.grpc.stream import StreamSession, _Traced
from tritonlite.grpc.wire import InferPlans
from tritonlite.protocol.loop import (
    LoopCompletions,
    PassSubmitter,
    runs_fast,
    start_loop_thread,
)
from tritonlite.protocol.models import model_info
from tritonlite.protocol.status import grpc_status_name
from tritonlite.protos import grpc_service_pb2 as pb

_log = logging.getLogger("tritonlite.grpc")

#: gRPC status codes by name (the numbers of the wire protocol)
STATUS = {name: i for i, name in enumerate((
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"))}

_CONTENT_TYPE = h2.literal("content-type", "application/grpc")
#: ``:status: 200`` is entry 8 of HPACK's static table
_RESPONSE_HEADERS = b"\x88" + _CONTENT_TYPE
_OK_TRAILERS = h2.literal("grpc-status", "0")

_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
#: methods answered on the loop itself (no blocking work)
_ON_LOOP = frozenset({"ServerLive", "ServerReady", "ModelReady"})


def _status_block(code: int, message: str, headers_sent: bool) -> bytes:
    block = b"" if headers_sent else _RESPONSE_HEADERS
    block += h2.literal("grpc-status", str(code))
    if message:
        # gRPC's percent-encoding: the message's UTF-8 with bytes outside 0x20-0x7E (and '%') escaped
        block += h2.literal("grpc-message", quote(message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~"))
    return block


def _parse_timeout(value: str) -> float | None:
    try:
        return int(value[:-1]) * _TIMEOUT_UNITS[value[-1]]
    except (KeyError, ValueError, IndexError):
        return None


class _Call:
    """What one stream carries: a unary call or a ModelStreamInfer session."""

    __slots__ = ("conn", "stream", "method", "buf", "message", "messages", "done", "headers_sent", "timer",
                 "cancel", "session", "encoding", "started")

    def __init__(self, conn: h2.H2Connection, stream: h2.Stream, method: str) -> None:
        self.conn = conn
        self.stream = stream
        self.method = method
        self.buf = bytearray()
        self.message: bytes | None = None
        self.messages = 0
        self.done = False
        self.headers_sent = False
        self.timer: asyncio.TimerHandle | None = None
        self.cancel: Callable[[], None] | None = None
        self.session: StreamSession | None = None
        self.encoding = "identity"
        self.started = time.monotonic_ns()

    # ---- answering (event-loop thread) ----------------------------------------------------------------
    def send_message(self, payload: bytes) -> None:
        if self.done:
            return
        conn, stream = self.conn, self.stream
        if not self.headers_sent:
            self.headers_sent = True
            conn.send_headers(stream, _RESPONSE_HEADERS)
        n = len(payload)
        conn.send_data(stream, b"\x00" + n.to_bytes(4, "big") + payload)

    def finish(self, code: int = 0, message: str = "") -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        if code == 0 and self.headers_sent:
            self.conn.send_trailers(self.stream, _OK_TRAILERS)
        else:  # trailers-only when nothing was sent yet
            self.conn.send_trailers(self.stream, _status_block(code, message, self.headers_sent))

    def reply(self, payload: bytes) -> None:
        """One response message and OK (a unary call's answer): headers, message and trailers in one write."""
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        message = b"\x00" + len(payload).to_bytes(4, "big") + payload
        if self.headers_sent:
            self.conn.send_data(self.stream, message)
            self.conn.send_trailers(self.stream, _OK_TRAILERS)
            return
        self.headers_sent = True
        self.conn.send_unary_response(self.stream, _RESPONSE_HEADERS, message, _OK_TRAILERS)

    def fail(self, exc: BaseException) -> None:
        if not isinstance(exc, TritonLiteError):
            _log.error("gRPC handler failed", exc_info=exc)
            exc = InternalError(f"{type(exc).__name__}: {exc}")
        self.finish(STATUS[grpc_status_name(exc)], exc.message)

    def abandon(self) -> None:
        """The stream was reset or the connection lost: cancel what runs for it."""
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        if self.cancel is not None:
            self.cancel()
        if self.session is not None:
            self.session.close()


class _Abort(Exception):
    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class _Context:
    """The slice of ``grpc.ServicerContext`` the shared servicer methods use."""

    __slots__ = ("metadata", "callbacks")

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata
        self.callbacks: list[Callable[[], None]] = []

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def add_callback(self, callback: Callable[[], None]) -> bool:
        self.callbacks.append(callback)
        return True

    def abort(self, code: Any, details: str) -> None:
        raise _Abort(code.value[0] if hasattr(code, "value") else int(code), details)

    def is_active(self) -> bool:
        return True


def _metadata(headers: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in headers.items() if not k.startswith(":") and not k.startswith("grpc-")
                 and k not in ("content-type", "te", "user-agent"))


class GrpcCalls:
    """The :class:`~tritonlite.grpc.h2.CallHandler` of every connection of one server."""

    def __init__(self, engine: Any, servicer: InferenceServicer, executor: concurrent.futures.Executor,
                 max_message_bytes: int, inline_compute_us: float) -> None:
        self.engine = engine
        self.servicer = servicer
        self.executor = executor
        self.max_message = max_message_bytes
        self.inline_ns = int(inline_compute_us * 1000)
        self.completions: LoopCompletions | None = None  # made on the loop's thread
        self.passes: PassSubmitter | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.active: set[_Call] = set()
        self._fast_headers: dict[str, str] | None = None
        #: decode plans / response heads of repeated ModelInfer shapes (tritonlite/grpc/wire.py)
        self.plans = InferPlans(_deserializer(pb.ModelInferRequest))
        self._unary: dict[str, tuple[Callable[[bytes], Any], Callable[..., Any]]] = {}
        service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
        for method in service.methods:
            if method.name in ("ModelInfer", "ModelStreamInfer"):
                continue
            self._unary[method.name] = (_deserializer(getattr(pb, method.input_type.name)), getattr(servicer, method.name))

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.completions = LoopCompletions(loop)
        self.passes = PassSubmitter(self.engine, loop)

    # ---- h2.CallHandler -------------------------------------------------------------------------------
    def on_headers(self, conn: h2.H2Connection, stream: h2.Stream) -> None:
        headers = stream.headers
        fast = self._fast_headers
        if fast is headers:  # the same decoded block as the last plain ModelInfer call: same routing
            call = stream.handler_state = _Call(conn, stream, "ModelInfer")
            self.active.add(call)
            return
        path = headers.get(":path", "")
        service, _, method = path[1:].partition("/")
        call = _Call(conn, stream, method if service in (SERVICE, HEALTH_SERVICE) else "")
        stream.handler_state = call
        if headers.get(":method") != "POST" or not headers.get("content-type", "").startswith("application/grpc"):
            call.finish(STATUS["UNIMPLEMENTED"] if headers.get(":method") == "POST" else STATUS["INTERNAL"],
                        "gRPC requires POST with content-type application/grpc")
            return
        if not call.method or (service == SERVICE and method not in self._unary and method not in ("ModelInfer", "ModelStreamInfer")) \
                or (service == HEALTH_SERVICE and method != "Check"):
            call.finish(STATUS["UNIMPLEMENTED"], "")  # what Triton (grpc++) answers: no message
            return
        call.encoding = headers.get("grpc-encoding", "identity")
        timeout = headers.get("grpc-timeout")
        if timeout is not None:
            seconds = _parse_timeout(timeout)
            if seconds is not None:
                call.timer = self.loop.call_later(max(0.0, seconds), self._deadline, call)  # type: ignore[union-attr]
        self.active.add(call)
        if method == "ModelStreamInfer":
            self._open_stream(call)
        elif method == "ModelInfer" and timeout is None and call.encoding == "identity":
            # header blocks seen before come back as the same dict (H2Connection's block cache): the
            # next call with this very dict needs none of the checks above
            self._fast_headers = headers

    def on_data(self, conn: h2.H2Connection, stream: h2.Stream, data: bytearray, end_stream: bool) -> None:
        call: _Call = stream.handler_state
        if call is None or call.done:
            return
        if end_stream and call.session is None and not call.buf and call.message is None and len(data) >= 5 \
                and data[0] == 0 and int.from_bytes(data[1:5], "big") == len(data) - 5 and len(data) - 5 <= self.max_message:
            # the common unary call: one whole uncompressed message, then the end of the stream
            call.messages = 1
            call.message = bytes(data[5:])
            self._dispatch(call)
            return
        if data:
            buf = call.buf
            buf += data
            while len(buf) >= 5:
                length = int.from_bytes(buf[1:5], "big")
                if length > self.max_message:
                    self._end(call, STATUS["RESOURCE_EXHAUSTED"],
                              f"Received message larger than max ({length} vs. {self.max_message})")
                    conn.reset_stream(stream, h2.CANCEL) if not stream.closed_remote else None
                    return
                if len(buf) < 5 + length:
                    break
                compressed = buf[0]
                payload = bytes(buf[5 : 5 + length])
                del buf[: 5 + length]
                if compressed:
                    try:
                        payload = self._decompress(payload, call.encoding)
                    except Exception as exc:  # noqa: BLE001
                        self._end(call, STATUS["INTERNAL"], f"Failed to decompress the message: {exc}")
                        return
                    if len(payload) > self.max_message:
                        self._end(call, STATUS["RESOURCE_EXHAUSTED"],
                                  f"Received message larger than max ({len(payload)} vs. {self.max_message})")
                        return
                call.messages += 1
                if call.session is not None:
                    if self.engine.tracer.active:  # waited since the previous message (or the call's start)
                        message = _stream_parse(payload)
                        now = time.monotonic_ns()
                        call.session.feed(message, call.started, now)
                        call.started = now
                    else:
                        call.session.feed(_stream_parse(payload))
                elif call.messages > 1:
                    self._end(call, STATUS["UNIMPLEMENTED"], "Received a second request message for a unary call")
                    return
                else:
                    call.message = payload
        if end_stream:
            if call.session is not None:
                call.session.end_of_input()
            elif call.buf or call.message is None:
                self._end(call, STATUS["INTERNAL"], "Half-closed without a request" if not call.buf
                          else "Incomplete gRPC message at the end of the stream")
            else:
                self._dispatch(call)

    def on_reset(self, conn: h2.H2Connection, stream: h2.Stream) -> None:
        call: _Call | None = stream.handler_state
        if call is not None:
            self.active.discard(call)
            call.abandon()

    # ---- calls ----------------------------------------------------------------------------------------
    def _end(self, call: _Call, code: int, message: str) -> None:
        self.active.discard(call)
        if call.cancel is not None:
            call.cancel()
        if call.session is not None:
            call.session.close()
        call.finish(code, message)

    def _deadline(self, call: _Call) -> None:
        call.timer = None
        self._end(call, STATUS["DEADLINE_EXCEEDED"], "Deadline Exceeded")

    @staticmethod
    def _decompress(payload: bytes, encoding: str) -> bytes:
        if encoding == "gzip":
            return gzip.decompress(payload)
        if encoding == "deflate":
            return zlib.decompress(payload)
        raise ValueError(f"unsupported grpc-encoding '{encoding}'")

    def _dispatch(self, call: _Call) -> None:
        method, payload = call.method, call.message or b""
        call.message = None
        if method == "ModelInfer":
            self._model_infer(call, payload)
        elif method == "Check":  # grpc.health.v1: SERVING while the engine is ready
            call.reply(b"\x08\x01" if self.engine.is_ready() else b"\x08\x02")
            self.active.discard(call)
        elif method in _ON_LOOP:
            parse, behaviour = self._unary[method]
            self._run_servicer(call, parse, behaviour, payload)
        else:
            parse, behaviour = self._unary[method]
            try:
                self.executor.submit(self._run_servicer, call, parse, behaviour, payload)
            except RuntimeError:  # the pool shut down: the server is stopping
                self._end(call, STATUS["UNAVAILABLE"], "the server is shutting down")

    def _run_servicer(self, call: _Call, parse: Callable[[bytes], Any], behaviour: Callable[..., Any], payload: bytes) -> None:
        """Run a shared servicer method (on the loop, or in the pool: the answer goes back to the loop)."""
        context = _Context(_metadata(call.stream.headers))
        try:
            response = behaviour(parse(payload), context)
            outcome: tuple[bytes, int, str] = (response.SerializeToString(), 0, "")
        except _Abort as exc:
            outcome = (b"", exc.code, exc.details)
        except Exception as exc:  # noqa: BLE001
            _log.error("gRPC handler failed", exc_info=exc)
            outcome = (b"", STATUS["INTERNAL"], f"{type(exc).__name__}: {exc}")
        for callback in context.callbacks:
            callback()

        def answer() -> None:
            self.active.discard(call)
            data, code, message = outcome
            if code == 0:
                call.reply(data)
            else:
                call.finish(code, message)

        self.completions.push(answer)  # type: ignore[union-attr]

    def _model_infer(self, call: _Call, payload: bytes) -> None:
        engine = self.engine
        try:
            decoded = self.plans.decode(payload, self.servicer.shm, decode_infer_request)
            read_end = time.monotonic_ns()
            if type(decoded) is Malformed:
                self._end(call, STATUS["INTERNAL"], PARSE_ERROR)
                return
            request = decoded.request
            info = model_info(engine, request.model_name, request.model_version)
        except TritonLiteError as exc:
            self.active.discard(call)
            call.fail(exc)
            return
        if info.decoupled:
            self.active.discard(call)
            call.fail(UnsupportedError(DECOUPLED_UNARY))
            return
        if engine.tracer.active:  # W3C trace context, Triton's GRPC_* timestamps
            request.trace_context = call.stream.headers.get("traceparent", "")
            frontend_trace.received(request, call.started, read_end)
        call.cancel = request.cancel
        completions = self.completions
        servicer = self.servicer
        active = self.active
        plans = self.plans

        def finish() -> None:
            active.discard(call)
            if call.done:
                frontend_trace.finished(request)  # cancelled: no send stamps, as in Triton
                return
            error = done.error
            data = None
            if error is None:
                try:
                    data = plans.encode(done.result, decoded, servicer._info(request.model_name), servicer.shm)
                except Exception as exc:  # noqa: BLE001 - an output that cannot be encoded
                    error = exc
            if request.trace is None:
                call.reply(data) if data is not None else call.fail(error)  # type: ignore[arg-type]
                return
            if data is not None:
                frontend_trace.response_complete(request)
            frontend_trace.send_started(request)  # the response, or the error status
            call.reply(data) if data is not None else call.fail(error)  # type: ignore[arg-type]
            frontend_trace.send_ended(request)

        done = _Done(completions, finish)  # type: ignore[arg-type]
        inline = self.inline_ns > 0 and runs_fast(info.stats, self.inline_ns)
        if inline and info.batching:  # with the pass's other requests: one batch on the loop
            self.passes.add(request, done)  # type: ignore[union-attr]
        else:
            engine._submit_unary(request, done, inline)

    def _open_stream(self, call: _Call) -> None:
        metadata = _metadata(call.stream.headers)
        grpc_error_mode = any(k == "triton_grpc_error" and v.lower() == "true" for k, v in metadata)
        completions = self.completions
        assert completions is not None

        def deliver(item: Any) -> None:  # on the loop
            if call.done:
                return
            if item is None:
                self.active.discard(call)
                call.finish()
            elif isinstance(item, BaseException):
                self._end(call, STATUS[grpc_status_name(item)] if isinstance(item, TritonLiteError) else STATUS["INTERNAL"],
                          item.message if isinstance(item, TritonLiteError) else f"{type(item).__name__}: {item}")
            elif type(item) is _Traced:
                for response in session.traced_write(item):
                    call.send_message(response.SerializeToString())
            else:
                call.send_message(item.SerializeToString())

        session = StreamSession(self.engine, self.servicer.shm, self.servicer._info, grpc_error_mode,
                                sink=lambda item: completions.push_ordered(lambda: deliver(item)))
        if self.engine.tracer.active:
            session.trace_context = call.stream.headers.get("traceparent", "")
        call.session = session

    def cancel_all(self) -> None:
        for call in list(self.active):
            self._end(call, STATUS["UNAVAILABLE"], "the server is shutting down")


class _Done:
    """``_submit_unary``'s callback: keeps the outcome and hands ``finish`` to the loop."""

    __slots__ = ("completions", "finish", "result", "error")

    def __init__(self, completions: LoopCompletions, finish: Callable[[], None]) -> None:
        self.completions = completions
        self.finish = finish
        self.result: Any = None
        self.error: BaseException | None = None

    def __call__(self, result: Any, error: Any) -> None:
        self.result = result
        self.error = error
        self.completions.push(self.finish)


_stream_parse = _deserializer(pb.ModelInferRequest)


class NativeGrpcFront:
    """Binds, runs the event loop thread, and stops (GOAWAY, drain, cancel the rest, join)."""

    def __init__(self, engine: Any, host: str, port: int, *, allow_shm: bool, max_message_bytes: int,
                 worker_threads: int, reuse_port: bool, inline_compute_us: float) -> None:
        self.engine = engine
        self.host = host
        self.requested_port = port
        self.reuse_port = reuse_port
        self.servicer = InferenceServicer(engine, allow_shm=allow_shm)
        self.executor = concurrent.futures.ThreadPoolExecutor(max(1, worker_threads), thread_name_prefix="tritonlite.grpc.worker")
        self.calls = GrpcCalls(engine, self.servicer, self.executor, max_message_bytes, inline_compute_us)
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_future: asyncio.Future | None = None
        self._conns: set[h2.H2Connection] = set()

    def start(self) -> None:
        import socket

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((self.host, self.requested_port))
            sock.listen(1024)
        except OSError:
            sock.close()
            self.executor.shutdown(wait=False)
            raise
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._thread, self._loop = start_loop_thread(f"tritonlite.grpc.server:{self.port}", lambda ready: self._serve(sock, ready))

    async def _serve(self, sock: Any, ready: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        self.calls.bind(loop)
        self._stop_future = loop.create_future()
        conns = self._conns
        calls = self.calls
        server = await loop.create_server(lambda: h2.H2Connection(calls, conns), sock=sock)
        ready.set()
        grace = await self._stop_future
        server.close()
        for conn in list(conns):
            conn.goaway()
        deadline = loop.time() + (grace if grace is not None else 0.0)
        while calls.active and loop.time() < deadline:
            await asyncio.sleep(0.01)
        calls.cancel_all()
        await asyncio.sleep(0.05)  # let the last frames reach the sockets
        for conn in list(conns):
            conn.abort()
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        except asyncio.TimeoutError:  # pragma: no cover
            pass

    def stop(self, grace: float | None) -> None:
        thread, loop, fut = self._thread, self._loop, self._stop_future
        if thread is None or loop is None:
            return

        def signal_stop() -> None:
            if fut is not None and not fut.done():
                fut.set_result(grace)

        try:
            loop.call_soon_threadsafe(signal_stop)
        except RuntimeError:  # pragma: no cover - loop already closed
            pass
        thread.join()
        self._thread = self._loop = None
        self.executor.shutdown(wait=True)
        self.servicer.join_readers()


__all__ = ["NativeGrpcFront", "GrpcCalls", "STATUS"]
