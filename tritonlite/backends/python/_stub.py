"""The child side of an isolated Python model: ``main([_, "<socket fd>"])`` in a fresh interpreter.

The child runs the same :class:`~tritonlite.backends.python.instance.PythonModelInstance` as the
in-process backend, so pb_utils behaves identically; only the engine it sees is a stand-in
(:class:`RemoteEngine`) that forwards BLS requests, model control and custom metrics to the parent.
A reader thread takes frames off the socket; the main thread runs ``initialize``/``execute``/
``finalize`` one at a time, as the parent's instance thread asks. Records of the ``tritonlite``
loggers (pb_utils.Logger included) are forwarded to the parent. When the parent goes away the
child exits at the end of the stream (a child stuck in C code that holds the GIL forever outlives a
parent killed with SIGKILL; a parent that closes normally kills it by PID).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import socket
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

from tritonlite.backends.python._ipc import (
    Arena,
    Channel,
    ChannelClosed,
    TensorReader,
    TensorWriter,
    decode_error,
    encode_error,
    encode_result,
)
from tritonlite.errors import InternalError, TritonLiteError
from tritonlite.futures import InferFuture
from tritonlite.request import InferenceRequest, InferResult, ResponseSink
from tritonlite.streams import ResponseStream


class RemoteTrace:
    """An execute request's trace as an isolated model's process sees it: the token the parent process
    knows the request by (a BLS request made with ``trace=request.trace()`` carries it back) and the
    OpenTelemetry context ``get_context()`` returns."""

    __slots__ = ("token", "context")

    def __init__(self, token: int, context: str) -> None:
        self.token, self.context = token, context

    def context_json(self) -> str:
        return self.context


def request_payload(writer: TensorWriter, core: InferenceRequest, inputs: Any, token: int = 0) -> dict[str, Any]:
    """A core request as plain data (used both ways: execute requests and BLS requests).

    ``token``: the execute request's token, sent as its trace handle when the request is traced.
    """
    trace = core.trace
    if isinstance(trace, RemoteTrace):  # a BLS request made with trace=request.trace() in the child
        token = trace.token
    return {
        "trace": token if trace is not None else 0,
        "trace_context": trace.context_json() if trace is not None else "",
        "trace_sampled": core.trace_sampled,
        "model_name": core.model_name,
        "model_version": core.model_version,
        "id": core.id,
        "parameters": dict(core.parameters or {}),
        "priority": core.priority,
        "timeout_us": core.timeout_us,
        "correlation_id": core.correlation_id,
        "flags": core.flags,
        "requested_outputs": list(core.requested_outputs) if core.requested_outputs is not None else None,
        "output_names": list(core.output_names),
        "batch_size": core.batch_size,
        "inputs": writer.add_named(inputs.items()),
    }


def request_from_payload(reader: TensorReader, data: dict[str, Any]) -> InferenceRequest:
    inputs = reader.get_named(data["inputs"])
    requested = data["requested_outputs"]
    core = InferenceRequest(
        model_name=data["model_name"], inputs=inputs,
        requested_outputs=tuple(requested) if requested is not None else None,
        model_version=data["model_version"], id=data["id"], parameters=data["parameters"],
        priority=data["priority"], timeout_us=data["timeout_us"], correlation_id=data["correlation_id"],
        flags=data["flags"], trace_sampled=data["trace_sampled"],
    )
    if data["trace"]:  # resolved to the parent's RequestTrace by the parent process for BLS requests
        core.trace = RemoteTrace(data["trace"], data["trace_context"])
    core.output_names = tuple(data["output_names"])
    core.batch_size = data["batch_size"]
    return core


def result_from_payload(reader: TensorReader, data: dict[str, Any] | None) -> InferResult | None:
    if data is None:
        return None
    error = decode_error(data["error"]) if data["error"] is not None else None
    return InferResult(outputs=reader.get_named(data["outputs"]), parameters=data["parameters"], error=error)


class _RemoteStream(ResponseStream):
    """A decoupled BLS stream whose ``cancel`` also reaches the request in the parent."""

    def __init__(self, request: InferenceRequest, on_cancel: Callable[[], None]) -> None:
        super().__init__(request)
        self._on_cancel = on_cancel

    def cancel(self) -> None:
        self._on_cancel()
        super().cancel()


class _RemoteSeries:
    """One custom metric living in the parent's registry."""

    def __init__(self, stub: "Stub", handle: int) -> None:
        self._stub, self._handle = stub, handle

    def increment(self, value: float) -> None:
        self._stub.call("metric_op", self._handle, "increment", value)

    def set(self, value: float) -> None:
        self._stub.call("metric_op", self._handle, "set", value)

    def observe(self, value: float) -> None:
        self._stub.call("metric_op", self._handle, "observe", value)

    def get(self) -> float:
        return float(self._stub.call("metric_op", self._handle, "get", None))


class _RemoteFamily:
    def __init__(self, stub: "Stub", handle: int) -> None:
        self._stub, self._handle = stub, handle

    def metric(self, labels: Any, buckets: Any, owner: Any = None) -> _RemoteSeries:
        handle = self._stub.call("metric", self._handle, dict(labels or {}), list(buckets) if buckets is not None else None)
        return _RemoteSeries(self._stub, handle)


class _RemoteCustomMetrics:
    def __init__(self, stub: "Stub") -> None:
        self._stub = stub

    def family(self, name: str, description: str, kind: str, owner: Any = None) -> _RemoteFamily:
        return _RemoteFamily(self._stub, self._stub.call("metric_family", name, description, kind))


class _RemoteRegistry:
    """What pb_utils.MetricFamily reads from ``engine.metrics_registry``."""

    def __init__(self, stub: "Stub", enabled: bool) -> None:
        self.enabled = enabled
        self.custom = _RemoteCustomMetrics(stub)


class RemoteEngine:
    """The engine as a model in the child sees it: every call is answered by the parent's engine."""

    def __init__(self, stub: "Stub", metrics_enabled: bool) -> None:
        self._stub = stub
        self.metrics_registry = _RemoteRegistry(stub, metrics_enabled)

    def _submit_request(self, request: InferenceRequest, inline: bool = False) -> InferFuture:
        fut = InferFuture()
        fut.request = request
        self._stub.send_bls(request, fut, None)
        return fut

    def _submit_stream(self, request: InferenceRequest) -> ResponseStream:
        holder: dict[str, int] = {}
        stream = _RemoteStream(request, lambda: self._stub.cancel_bls(holder.get("id")))
        holder["id"] = self._stub.send_bls(request, None, stream)
        return stream

    def load_model(self, name: str, config: Any = None, files: Any = None) -> None:
        self._stub.call("load_model", name, config, dict(files) if files else None)

    def unload_model(self, name: str, unload_dependents: bool = False) -> None:
        self._stub.call("unload_model", name, unload_dependents)

    def is_model_ready(self, name: str, version: str = "") -> bool:
        return bool(self._stub.call("is_model_ready", name, version))


class _ForwardHandler(logging.Handler):
    """Sends each record of the child's ``tritonlite`` loggers to the parent, which logs it there."""

    def __init__(self, channel: Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self._channel.send("log", 0, (record.name, record.levelno, text, record.pathname, record.lineno, record.funcName))
        except Exception:  # never let logging break the model
            pass


_STOP = object()


class Stub:
    """One model instance in this process, driven by the parent over ``channel``."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.instance: Any = None
        self.arena: Arena | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, InferFuture] = {}
        self._streams: dict[int, ResponseStream] = {}
        self._lock = threading.Lock()
        self._work: queue.SimpleQueue = queue.SimpleQueue()

    # ---- calls into the parent (any thread) ----------------------------------------------------
    def call(self, method: str, *args: Any) -> Any:
        fut: InferFuture = InferFuture()
        ident = next(self._ids)
        with self._lock:
            self._pending[ident] = fut
        self.channel.send("call", ident, (method, args))
        return fut.result()

    def send_bls(self, request: InferenceRequest, fut: InferFuture | None, stream: ResponseStream | None) -> int:
        ident = next(self._ids)
        writer = TensorWriter()
        payload = {"request": request_payload(writer, request, request.inputs), "decoupled": stream is not None}
        with self._lock:
            if fut is not None:
                self._pending[ident] = fut
            else:
                self._streams[ident] = stream  # type: ignore[assignment]
        fd = writer.finish()
        try:
            self.channel.send("bls", ident, payload, fd)
        finally:
            if fd is not None:
                os.close(fd)
        return ident

    def cancel_bls(self, ident: int | None) -> None:
        if ident is not None:
            self.channel.send("bls_cancel", ident)

    # ---- frames from the parent (reader thread) ---------------------------------------------------
    def read_forever(self) -> None:
        try:
            while True:
                kind, ident, payload, fd = self.channel.recv()
                if kind == "reply":
                    self._on_reply(ident, payload, fd)
                elif kind == "bls_stream":
                    self._on_stream(ident, payload, fd)
                else:
                    self._work.put((kind, ident, payload, fd))
        except ChannelClosed:
            os._exit(0)  # the parent is gone: nobody is left to answer

    def _on_reply(self, ident: int, payload: Any, fd: int | None) -> None:
        with self._lock:
            fut = self._pending.pop(ident, None)
        status, value = payload
        if fut is None:
            return
        if status == "error":
            fut.settle(None, decode_error(value))
        elif status == "result":
            fut.settle(result_from_payload(TensorReader(fd), value), None)
        else:
            fut.settle(value, None)

    def _on_stream(self, ident: int, payload: Any, fd: int | None) -> None:
        result, error, final = payload
        with self._lock:
            stream = self._streams.get(ident)
            if final and stream is not None:
                del self._streams[ident]
        if stream is not None:
            stream.push(result_from_payload(TensorReader(fd), result), decode_error(error) if error else None, final)

    # ---- the work the parent asks for (main thread) ------------------------------------------------
    def serve(self) -> None:
        while True:
            kind, ident, payload, fd = self._work.get()
            handler = getattr(self, f"_do_{kind}", None)
            if handler is None:
                self.channel.send("reply", ident, ("error", encode_error(InternalError(f"unknown stub request '{kind}'"))))
                continue
            try:
                value, out_fd = handler(payload, fd)
            except BaseException as exc:  # every failure goes back to the parent, nothing kills the loop
                if isinstance(exc, (KeyboardInterrupt, SystemExit)) and kind != "finalize":
                    raise
                self.channel.send("reply", ident, ("error", encode_error(exc)))
                if kind == "finalize":
                    return
                continue
            try:
                self.channel.send("reply", ident, value, out_fd)
            finally:
                if out_fd is not None:
                    os.close(out_fd)
            if kind == "finalize":
                return

    def _do_init(self, payload: dict[str, Any], fd: int | None) -> tuple[Any, None]:
        from tritonlite.backends.base import LoadContext
        from tritonlite.backends.python.instance import PythonModelInstance
        from tritonlite.config import parse_json_config

        if fd is not None:
            self.arena = Arena(fd, is_parent=False)
            os.close(fd)
        logger = logging.getLogger("tritonlite")
        logger.handlers[:] = [_ForwardHandler(self.channel)]
        logger.setLevel(payload["log_level"])
        logger.propagate = False
        ctx = LoadContext(
            model_name=payload["model_name"], model_version=payload["model_version"],
            config=parse_json_config(json.dumps(payload["config"])), model_dir=Path(payload["model_dir"]),
            version_dir=Path(payload["version_dir"]), model_path=Path(payload["model_path"]),
            engine=RemoteEngine(self, payload["metrics_enabled"]), instance_name=payload["instance_name"],
            instance_kind=payload["instance_kind"], device_id=payload["device_id"],
        )
        self.instance = PythonModelInstance(ctx)
        return ("ok", {"pid": os.getpid(), "executable": sys.executable}), None

    def _do_exec(self, payload: dict[str, Any], fd: int | None) -> tuple[Any, int | None]:
        reader = TensorReader(fd, self.arena if payload["arena"] else None)
        requests = []
        for token, data in payload["requests"]:
            core = request_from_payload(reader, data)
            core.backend_inputs = dict(core.inputs)
            core.sink = ResponseSink(self._forwarder(token))
            requests.append(core)
        results = self.instance.execute(requests)
        flags = [getattr(r, "release_flags", 1) for r in requests]  # RESCHEDULE goes back to the parent's batcher
        if results is None:
            return ("ok", (None, flags, False)), None
        writer = TensorWriter()
        encoded = [encode_result(writer, r.outputs, r.parameters, r.error) if r is not None else None for r in results]
        fd, in_arena = writer.finish_into(self.arena)
        return ("ok", (encoded, flags, in_arena)), fd

    def _forwarder(self, token: int) -> Callable[..., None]:
        def forward(result: InferResult | None, error: TritonLiteError | None, final: bool, reason: str = "") -> None:
            writer = TensorWriter()
            data = encode_result(writer, result.outputs, result.parameters, None) if result is not None else None
            fd = writer.finish()
            try:
                self.channel.send("response", token, (data, encode_error(error) if error is not None else None, final), fd)
            finally:
                if fd is not None:
                    os.close(fd)

        return forward

    def _do_ready(self, payload: Any, fd: int | None) -> tuple[Any, None]:
        return ("ok", bool(self.instance.is_ready())), None

    def _do_finalize(self, payload: Any, fd: int | None) -> tuple[Any, None]:
        if self.instance is not None:
            self.instance.close()
        return ("ok", None), None


def main(argv: list[str]) -> int:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=int(argv[1]))
    stub = Stub(Channel(sock))
    reader = threading.Thread(target=stub.read_forever, name="tritonlite.stub.reader", daemon=True)
    reader.start()
    stub.serve()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # model threads left running must not keep a finalized child alive

