"""``ModelStreamInfer`` (SPEC §3.3): one bidirectional call carrying any number of requests.

A reader thread turns each incoming message into a core request and queues it on its model; the
engine's instance threads report every response back here, and the call's handler thread writes them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Any, Callable, Iterator

from tritonlite.engine import InferenceEngine
from tritonlite.errors import InvalidArgumentError, TritonLiteError
from tritonlite.grpc import frontend_trace
from tritonlite.grpc.codec import (
    FINAL_KEY,
    DecodedRequest,
    Malformed,
    decode_infer_request,
    encode_infer_response,
    error_message,
    error_stream_response,
)
from tritonlite.protocol.models import ModelInfo
from tritonlite.protocol.shm import SharedMemoryRegistry
from tritonlite.protos import grpc_service_pb2 as pb
from tritonlite.request import InferenceRequest, InferResult


class _Entry:
    """One request read from a stream; non-decoupled entries also hold their place in the write order."""

    __slots__ = ("decoded", "decoupled", "response", "ready", "submitting")

    def __init__(self, decoded: DecodedRequest | None, decoupled: bool) -> None:
        self.decoded = decoded
        self.decoupled = decoupled
        self.response: Any = None
        self.ready = False
        #: True while the engine takes the request: an error then is Triton's "infer failed" (never queued)
        self.submitting = False


class _Traced:
    """A response of a traced request on its way to the writer, which adds GRPC_SEND_* around the write
    (``response`` None: only the request's final flag, nothing to write)."""

    __slots__ = ("response", "request", "final")

    def __init__(self, response: Any, request: InferenceRequest, final: bool) -> None:
        self.response, self.request, self.final = response, request, final


def _for_writer(response: Any, request: InferenceRequest, final: bool) -> Any:
    trace = request.trace
    return _Traced(response, request, final) if trace is not None and trace.frontend_pending else response


class _Forwarder:
    """The ``push`` end the engine's stream completion calls (from instance threads) per response."""

    __slots__ = ("callback", "entry")

    def __init__(self, callback: Callable[..., None], entry: _Entry) -> None:
        self.callback, self.entry = callback, entry

    def push(self, result: InferResult | None, error: TritonLiteError | None, final: bool) -> None:
        self.callback(self.entry, result, error, final)


class StreamSession:
    """One ``ModelStreamInfer`` call (SPEC §3.3).

    Each incoming message is an independent request. Responses of non-decoupled models are written
    in request order; those of decoupled models as they come. Every response carries
    ``triton_final_response``; a bare FINAL flag is sent as an empty response only when the request
    asked with ``triton_enable_empty_final_response``. Errors are responses with ``error_message``
    (or, with ``triton_grpc_error: true`` metadata, end the call with their status). When the call ends
    early (client cancel, deadline, error mode) every request still in flight is cancelled.
    A reader thread submits requests; the handler thread writes what :meth:`responses` yields.
    """

    def __init__(
        self,
        engine: InferenceEngine,
        shm: SharedMemoryRegistry,
        info: Callable[[str], Callable[[str], ModelInfo]],
        grpc_error_mode: bool,
        sink: Callable[[Any], None] | None = None,
    ) -> None:
        self.engine = engine
        self.shm = shm
        self.info = info
        self.grpc_error_mode = grpc_error_mode
        #: W3C ``traceparent`` from the call's metadata (set by the servicer when tracing is on)
        self.trace_context = ""
        self.out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: where responses go: a response message, an exception (error mode: ends the call) or None (the
        #: call is complete); the default queue feeds :meth:`responses` (grpcio's handler thread)
        self.sink: Callable[[Any], None] = sink if sink is not None else self.out.put
        self.lock = threading.Lock()
        self.order: deque[_Entry] = deque()
        self.inflight: set[InferenceRequest] = set()
        #: traced requests whose last response is not written yet (their traces wait for GRPC_SEND_END)
        self.traced: set[InferenceRequest] = set()
        self.pending = 0
        self.reading = True
        self.closed = False

    def responses(self) -> Iterator[Any]:
        """What the call's handler writes, in order; grpcio asks for the next item once the last is sent."""
        while True:
            item = self.out.get()
            if item is None:
                return
            if type(item) is _Traced:
                yield from self.traced_write(item)
                continue
            yield item
            if isinstance(item, BaseException):
                return

    def traced_write(self, item: "_Traced") -> Iterator[Any]:
        """Yield the response of a traced item (if any) for the writer, with GRPC_SEND_START before the
        write and GRPC_SEND_END once the writer asks for more; a final item ends the trace."""
        request = item.request
        if item.response is not None:
            frontend_trace.send_started(request)
            yield item.response
            frontend_trace.send_ended(request, final=item.final)
        elif item.final:
            frontend_trace.finished(request)
        if item.final:
            with self.lock:
                self.traced.discard(request)

    def close(self) -> None:
        """The call ended: cancel what is still running, write the traces still held, release the writer."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            inflight, self.inflight = list(self.inflight), set()
            traced, self.traced = list(self.traced), set()
        for request in inflight:
            request.cancel()
        for request in traced:
            frontend_trace.finished(request)
        self.out.put(None)

    def read(self, request_iterator: Iterator[Any]) -> None:
        """Submit each message as it arrives; with tracing on, the wait for each is GRPC_WAITREAD_START/END."""
        messages = iter(request_iterator)
        tracer = self.engine.tracer
        try:
            while True:
                start = time.monotonic_ns() if tracer.active else 0
                try:
                    message = next(messages)
                except StopIteration:
                    break
                if self.closed or not self.reading:  # closed, or a malformed message ended the input
                    break
                self.feed(message, start, time.monotonic_ns() if start else 0)
        except Exception:  # the call was cancelled or broke: close() does the rest
            pass
        finally:
            self.end_of_input()

    def end_of_input(self) -> None:
        """The client half-closed: the call completes once every request has answered."""
        with self.lock:
            if not self.reading:
                return
            self.reading = False
            self._maybe_done()

    def feed(self, message: Any, read_start: int = 0, read_end: int = 0) -> None:
        """Submit one incoming message (a parsed request or a :class:`Malformed`); never blocks.

        A message that does not parse ends the input, as in Triton (grpc++ fails the read, which the
        stream handler takes for the client's half-close): what is in flight still answers, later
        messages are ignored and the call ends OK.
        """
        if not self.reading:
            return
        if type(message) is Malformed:
            self.end_of_input()
            return
        try:
            decoded = decode_infer_request(message, self.shm)
            decoupled = self.info(decoded.request.model_name)(decoded.request.model_version).decoupled
        except TritonLiteError as exc:
            self._answer_early(exc, message)
            return
        request = decoded.request
        request.trace_context = self.trace_context
        if read_start:
            frontend_trace.received(request, read_start, read_end)
        entry = _Entry(decoded, decoupled)
        with self.lock:
            if self.closed:
                return
            if not entry.decoupled:
                self.order.append(entry)
            self.pending += 1
            self.inflight.add(request)
        entry.submitting = True
        self.engine._submit_with_callback(request, _Forwarder(self._on_response, entry).push)
        entry.submitting = False
        if request.trace is not None and request.trace.frontend_pending:
            with self.lock:
                closed = self.closed
                if not closed:
                    self.traced.add(request)
            if closed:
                frontend_trace.finished(request)

    def _answer_early(self, exc: TritonLiteError, message: Any) -> None:
        """An error before the request reached a model: only the request id travels back, as a response
        on the stream even in ``triton_grpc_error`` mode (Triton ends the call only for errors a model's
        response carries)."""
        entry = _Entry(None, False)
        entry.response = error_stream_response(exc.message, message, None)
        entry.ready = True
        with self.lock:
            self.order.append(entry)
            self._flush()

    def _on_response(self, entry: _Entry, result: InferResult | None, error: TritonLiteError | None, final: bool) -> None:
        if self.closed:
            return
        decoded = entry.decoded
        assert decoded is not None
        response = None
        if error is None and result is not None:
            try:
                response = pb.ModelStreamInferResponse()
                encode_infer_response(result, decoded, self.info(decoded.request.model_name), self.shm, out=response.infer_response)
                response.infer_response.parameters[FINAL_KEY].bool_param = final
            except Exception as exc:  # an output that cannot be encoded fails this response only
                error = exc if isinstance(exc, TritonLiteError) else InvalidArgumentError(error_message(exc))
        if error is not None:
            # a request the engine refused while taking it (validation, unknown version, sequence checks)
            # never reached a queue: answered like Triton's "infer failed", in-stream with only the id
            before = entry.submitting or decoded.request.times.queue_start == 0
            if self.grpc_error_mode and not before:
                self._put(error)
            else:
                response = error_stream_response(error.message, decoded, None if before else final)
        elif result is None and final and entry.decoupled and decoded.enable_empty_final:
            response = pb.ModelStreamInferResponse()
            ir = response.infer_response
            ir.id, ir.model_name, ir.model_version = decoded.request.id, decoded.request.model_name, decoded.version_text
            ir.parameters[FINAL_KEY].bool_param = True
        request = decoded.request
        with self.lock:
            if response is not None:
                if entry.decoupled:
                    self._put(_for_writer(response, request, final))
                else:
                    entry.response = response
            elif final and entry.decoupled and request.trace is not None and request.trace.frontend_pending:
                self._put(_Traced(None, request, True))  # only the final flag: the writer ends the trace in order
            if final:
                entry.ready = True
                self.pending -= 1
                self.inflight.discard(decoded.request)
                if not entry.decoupled:
                    self._flush()
                self._maybe_done()

    def _flush(self) -> None:  # with the lock held
        order = self.order
        while order and order[0].ready:
            entry = order.popleft()
            if entry.response is not None:
                self._put(entry.response if entry.decoded is None else _for_writer(entry.response, entry.decoded.request, True))

    def _put(self, item: Any) -> None:
        if not self.closed:
            self.sink(item)

    def _maybe_done(self) -> None:  # with the lock held
        if not self.reading and self.pending == 0 and not self.order:
            self._put(None)


__all__ = ["StreamSession"]
