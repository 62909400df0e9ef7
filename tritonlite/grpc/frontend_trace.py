"""Triton's gRPC frontend trace timestamps, for any gRPC front that serves through this package.

Triton's gRPC frontend (server ``src/grpc/infer_handler.cc``, ``stream_infer_handler.cc``) adds to the
trace of a request, besides the core's REQUEST_START ... REQUEST_END:

* ``GRPC_WAITREAD_START`` / ``GRPC_WAITREAD_END``: from when it began waiting for the request message
  to when the message was read (parsed);
* ``INFER_RESPONSE_COMPLETE``: ``ModelInfer`` only, once the response is converted to its message;
* ``GRPC_SEND_START`` / ``GRPC_SEND_END``: around writing each response (a decoupled request in a
  stream has one pair per response).

A front passes its own ``time.monotonic_ns()`` stamps (the engine's trace clock) to these functions.
:func:`received` goes on the request before it is submitted; it makes a sampled trace wait for the
front, which must then end it exactly once, with :func:`send_ended` (``final=True``) after the last
write or :func:`finished` when the call ends without one (a cancelled call: Triton records no send
stamps then). Each function does nothing for a request that is not traced.
"""

from __future__ import annotations

import time
from typing import Any

WAITREAD_START = "GRPC_WAITREAD_START"
WAITREAD_END = "GRPC_WAITREAD_END"
RESPONSE_COMPLETE = "INFER_RESPONSE_COMPLETE"
SEND_START = "GRPC_SEND_START"
SEND_END = "GRPC_SEND_END"


class Received:
    """A request message with the stamps of its read, as a front's deserializer may hand it on."""

    __slots__ = ("message", "read_start_ns", "read_end_ns")

    def __init__(self, message: Any, read_start_ns: int, read_end_ns: int) -> None:
        self.message = message
        self.read_start_ns = read_start_ns
        self.read_end_ns = read_end_ns


def received(request: Any, read_start_ns: int, read_end_ns: int) -> None:
    """Before submitting ``request`` (a core request): the read stamps; a sampled trace then waits for the front."""
    request.trace_frontend = [(WAITREAD_START, read_start_ns), (WAITREAD_END, read_end_ns)]


def _pending(request: Any) -> Any:
    trace = request.trace
    return trace if trace is not None and trace.frontend_pending else None


def response_complete(request: Any, ns: int = 0) -> None:
    """A unary response was converted to its message (``INFER_RESPONSE_COMPLETE``)."""
    trace = _pending(request)
    if trace is not None:
        trace.frontend.append((RESPONSE_COMPLETE, ns or time.monotonic_ns()))


def send_started(request: Any, ns: int = 0) -> None:
    """A response of ``request`` is about to be written (``GRPC_SEND_START``)."""
    trace = _pending(request)
    if trace is not None:
        trace.frontend.append((SEND_START, ns or time.monotonic_ns()))


def send_ended(request: Any, ns: int = 0, final: bool = True) -> None:
    """That response is written (``GRPC_SEND_END``); ``final``: it was the request's last, so the trace is written."""
    trace = _pending(request)
    if trace is None:
        return
    if trace.frontend and trace.frontend[-1][0] == SEND_START:
        trace.frontend.append((SEND_END, ns or time.monotonic_ns()))
    if final:
        trace.close()


def finished(request: Any) -> None:
    """The call is over for ``request``: write its trace if the front still held it (no stamps added)."""
    trace = _pending(request)
    if trace is not None:
        trace.close()


__all__ = ["Received", "received", "response_complete", "send_started", "send_ended", "finished",
           "WAITREAD_START", "WAITREAD_END", "RESPONSE_COMPLETE", "SEND_START", "SEND_END"]
