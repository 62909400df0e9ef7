"""The ``/infer`` hot path: decode on the event loop, submit with a callback, answer from the loop.

Per request: one decode (:func:`~tritonlite.http.codec.decode_infer`), one
:meth:`~tritonlite.engine.InferenceEngine._submit_unary` whose callback records the outcome, one
encode and one transport write — no task, no future, no executor. Engine threads hand completions
back through :class:`LoopCompletions`, which wakes the event loop once per burst: when a batch of
16 requests finishes, the loop is woken once and answers all 16 in one pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from tritonlite.errors import ErrorCode, NotFoundError, TritonLiteError, UnsupportedError
from tritonlite.http.codec import (IHCL, DecodedInfer, HeaderSizeError, compress, decode_infer, decompress, encode_infer,
                                   json_parse_error, response_encoding)
from tritonlite.http.connection import TEXT_PLAIN, Request, Response, json_error
from tritonlite.protocol.loop import LoopCompletions, PassSubmitter, runs_fast
from tritonlite.protocol.models import ModelInfo, model_info
from tritonlite.protocol.status import http_status
from tritonlite.request import InferResult

_log = logging.getLogger("tritonlite.http")

_JSON_HEADERS = [("Content-Type", "application/json")]
_BINARY_TYPE = ("Content-Type", "application/octet-stream")


def error_response(exc: TritonLiteError, headers: list[tuple[str, str]] | None = None,
                   content_type: str = "application/json") -> Response:
    return json_error(http_status(exc), exc.message, headers, content_type)


class _Pending:
    """One request between its submit and its answer; ``done`` runs on an engine thread."""

    __slots__ = ("conn", "decoded", "info", "accept", "registry", "completions", "result", "error")

    def __init__(self, conn: Any, decoded: DecodedInfer, info: ModelInfo, accept: str | None, registry: Any,
                 completions: LoopCompletions) -> None:
        self.conn = conn
        self.decoded = decoded
        self.info = info
        self.accept = accept
        self.registry = registry
        self.completions = completions
        self.result: InferResult | None = None
        self.error: TritonLiteError | None = None

    def done(self, result: InferResult | None, error: TritonLiteError | None) -> None:
        self.result = result
        self.error = error
        self.completions.push(self.finish)

    def finish(self) -> None:
        """Encode the outcome and answer (event loop thread)."""
        trace = self.decoded.request.trace
        if self.error is not None:
            # Triton answers a failed execution from its completion callback as text/plain; the request
            # checks its core makes before queueing (INVALID_ARG) come back as application/json
            error = self.error
            resp = error_response(error, None, "application/json" if error.code == ErrorCode.INVALID_ARG else TEXT_PLAIN)
        else:
            try:
                resp = encode_response(self.result, self.decoded, self.info, self.registry, self.accept)  # type: ignore[arg-type]
                if trace is not None:  # Triton's HTTP frontend stamps the finished response too
                    trace.frontend.append(("INFER_RESPONSE_COMPLETE", time.monotonic_ns()))
                resp.trace, trace = trace, None  # the connection adds HTTP_SEND_START / _END, then writes it
            except TritonLiteError as exc:
                resp = error_response(exc, None, TEXT_PLAIN)
            except Exception as exc:
                _log.exception("encoding the response of model '%s' failed", self.info.name)
                resp = json_error(500, f"internal server error: {type(exc).__name__}: {exc}")
        if trace is not None:  # no response carries it: write it now
            trace.close()
        self.conn.respond(resp)


def encode_response(result: InferResult, decoded: DecodedInfer, info: ModelInfo, registry: Any, accept: str | None) -> Response:
    parts, header_len = encode_infer(result, decoded, info, registry)
    if header_len is not None:
        headers = [_BINARY_TYPE, ("Inference-Header-Content-Length", str(header_len))]
    else:
        headers = _JSON_HEADERS
    if accept:
        encoding = response_encoding(accept)
        if encoding is not None:
            try:
                parts = [compress(parts, encoding)]
                headers = [*headers, ("Content-Encoding", encoding)]
            except Exception:  # Triton sends the body uncompressed when compression fails
                pass
    return Response(200, parts, headers)


class InferHandler:
    """Serves ``POST /v2/models/<name>[/versions/<v>]/infer`` for one engine on one event loop."""

    def __init__(self, engine: Any, registry: Any, limit: int, inline_compute_us: float = 0.0) -> None:
        self.engine = engine
        self.registry = registry
        self.limit = limit
        self.inline_ns = int(inline_compute_us * 1000)
        self._completions: LoopCompletions | None = None
        self._pass: PassSubmitter | None = None

    def start(self, req: Request, conn: Any, name: str, version: str, version_number: int) -> None:
        """Decode and submit; ``conn.respond`` gets the answer (at once for errors found here)."""
        try:
            decoded, info = self._decode(req, name, version, version_number)
        except _UnsupportedEncoding as exc:
            conn.respond(error_response(exc.error, [("Accept-Encoding", "gzip, deflate")], TEXT_PLAIN))
            return
        except _BeforeJson as exc:
            conn.respond(error_response(exc.error, None, TEXT_PLAIN))
            return
        except HeaderSizeError as exc:
            conn.respond(error_response(exc, None, TEXT_PLAIN))
            return
        except TritonLiteError as exc:
            conn.respond(error_response(exc))
            return
        completions = self._completions
        if completions is None:
            loop = asyncio.get_running_loop()
            completions = self._completions = LoopCompletions(loop)
            self._pass = PassSubmitter(self.engine, loop)
        pending = _Pending(conn, decoded, info, req.headers.get("accept-encoding"), self.registry, completions)
        request = decoded.request
        if self.engine.tracer.active:  # W3C trace context, and the HTTP_* timestamps the connection adds
            request.trace_context = req.headers.get("traceparent", "")
            request.trace_frontend = [("HTTP_RECV_START", req.recv_start), ("HTTP_RECV_END", req.recv_end)]
        conn.cancel_current = request.cancel
        inline = self.inline_ns > 0 and runs_fast(info.stats, self.inline_ns)
        if inline and info.batching:  # with the pass's other requests: one batch on the loop
            self._pass.add(request, pending.done)  # type: ignore[union-attr]
        else:
            self.engine._submit_unary(request, pending.done, inline)

    def _decode(self, req: Request, name: str, version: str, version_number: int) -> tuple[DecodedInfer, ModelInfo]:
        try:
            if version_number == 0:  # no model has a version 0 (Triton looks it up like any other)
                model_info(self.engine, name, -1)
                raise NotFoundError(f"Request for unknown model: '{name}' version 0 is not found")
            info = model_info(self.engine, name, version_number)
        except TritonLiteError as exc:
            raise _BeforeJson(exc) from None
        if info.decoupled:
            raise _BeforeJson(UnsupportedError("HTTP end point doesn't support models with decoupled transaction policy"))
        headers = req.headers
        body = req.body
        encoding = headers.get("content-encoding")
        if encoding is not None:
            try:
                body = decompress(body, encoding, self.limit)
            except UnsupportedError as exc:
                raise _UnsupportedEncoding(exc) from None
        try:
            return decode_infer(body, headers.get(IHCL), name, version, info, self.registry, self.limit), info
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            if isinstance(exc, TritonLiteError):
                raise
            raise json_parse_error(f"Unable to parse the inference request: {exc}") from None


class _BeforeJson(Exception):
    """An error Triton's infer handler answers before it reads the request (unknown model, decoupled): text/plain."""

    def __init__(self, error: TritonLiteError) -> None:
        super().__init__(error.message)
        self.error = error


class _UnsupportedEncoding(Exception):
    """An unsupported Content-Encoding: answered with an Accept-Encoding header, as Triton does."""

    def __init__(self, error: UnsupportedError) -> None:
        super().__init__(error.message)
        self.error = error


class FutureResponder:
    """A ``conn`` for :meth:`InferHandler.start` that resolves an asyncio future (the coroutine form)."""

    __slots__ = ("future", "cancel_current")

    def __init__(self, future: asyncio.Future) -> None:
        self.future = future
        self.cancel_current: Callable[[], None] | None = None

    def respond(self, resp: Response) -> None:
        if not self.future.done():
            self.future.set_result(resp)


__all__ = ["InferHandler", "LoopCompletions", "FutureResponder", "encode_response", "error_response"]
