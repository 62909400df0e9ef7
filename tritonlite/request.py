"""The two objects every door and every backend share: a request and its result.

Doors build an :class:`InferenceRequest`; the engine validates it, a scheduler hands batches of
them to a backend instance, and each request's :class:`ResponseSink` turns the backend's
:class:`InferResult` (or error) into the caller's future or stream.
"""

from __future__ import annotations

import enum
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from tritonlite.errors import InvalidArgumentError, TritonLiteError


class RequestFlag(enum.IntFlag):
    """Sequence flags (TRITONSERVER_REQUEST_FLAG_*)."""

    NONE = 0
    SEQUENCE_START = 1
    SEQUENCE_END = 2


#: TRITONSERVER_RESPONSE_COMPLETE_FINAL
RESPONSE_COMPLETE_FINAL = 1

#: TRITONSERVER_REQUEST_RELEASE_ALL / _RESCHEDULE
REQUEST_RELEASE_ALL = 1
REQUEST_RELEASE_RESCHEDULE = 2


#: what C/C++ number readers (atoi, std::stoi, std::stol) take: leading blanks, a sign, then digits
CXX_INTEGER_PREFIX = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def parse_version(version: str | int | None) -> int:
    """'' / None / -1 mean "use the version policy"; anything else must be a positive integer."""
    if version is None or version == "" or version == -1:
        return -1
    if isinstance(version, int):
        if version < 1:
            raise InvalidArgumentError(f"invalid model version specified {version}")
        return version
    text = str(version)
    # Triton's GetModelVersionFromString: std::stol (leading blanks, a sign, then digits; the rest ignored)
    match = CXX_INTEGER_PREFIX.match(text)
    if match is None or not -(2**63) <= int(match.group(1)) < 2**63:
        raise InvalidArgumentError(  # libstdc++'s what() is "stol" for both no digits and out of range
            f"failed to get model version from specified version string '{text}' (details: stol), "
            "version should be an integral value > 0"
        )
    number = int(match.group(1))
    if number < 0:
        raise InvalidArgumentError(f"invalid model version specified '{text}' , version should be an integral value > 0")
    return number


@dataclass
class RequestTimes:
    """The five timestamps (ns, monotonic) that feed both statistics and metrics."""

    queue_start: int = 0
    compute_start: int = 0
    compute_input_end: int = 0
    compute_infer_end: int = 0
    compute_output_end: int = 0
    #: answered from the response cache: statistics were recorded at the lookup, not at completion
    cache_hit: bool = False


@dataclass(eq=False)
class InferResult:
    """Outputs of one inference (a response); also what backends return per request.

    ``outputs`` maps output names to numpy arrays (BYTES as object arrays of ``bytes``).
    """

    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    model_name: str = ""
    model_version: str = ""
    id: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    error: TritonLiteError | None = None

    def as_numpy(self, name: str) -> np.ndarray | None:
        """The named output, or None when the response has no such output (tritonclient's rule)."""
        return self.outputs.get(name)

    def __repr__(self) -> str:
        shapes = {k: (v.dtype.name, v.shape) for k, v in self.outputs.items()}
        return f"InferResult(model={self.model_name!r}, version={self.model_version!r}, outputs={shapes})"


class ResponseSink:
    """Where a request's responses go; the engine gives each request one.

    ``send(result, final)`` may be called any number of times (decoupled models); ``final``
    closes it. ``fail(error, reason)`` closes it with an error.
    """

    __slots__ = ("_on_response", "_closed", "_lock")

    def __init__(self, on_response: Callable[[InferResult | None, TritonLiteError | None, bool, str], None]) -> None:
        self._on_response = on_response
        self._closed = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, result: InferResult | None, final: bool = True) -> None:
        with self._lock:
            if self._closed:
                raise InvalidArgumentError("Unable to send response: the response sender was already closed with the final flag")
            self._closed = final
        error = result.error if result is not None else None
        self._on_response(None if error is not None else result, error, final, "BACKEND")

    def fail(self, error: TritonLiteError, reason: str = "OTHER") -> None:
        """Close with an error; ``reason`` is the metrics failure reason (REJECTED, CANCELED, BACKEND, OTHER)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._on_response(None, error, True, reason)


@dataclass(eq=False)
class InferenceRequest:
    """One inference request as the core sees it, whatever door it came through.

    ``inputs`` holds numpy arrays in the shape the client sent; after validation the engine
    fills ``batch_size`` (0 for models that do not batch), ``output_names`` (the outputs to
    return) and ``backend_inputs`` (inputs reshaped as ``reshape`` asks).
    """

    model_name: str
    inputs: Mapping[str, np.ndarray]
    requested_outputs: tuple[str, ...] | None = None
    model_version: int = -1
    id: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    timeout_us: int = 0
    correlation_id: int | str = 0
    flags: int = 0
    # filled by the engine
    batch_size: int = 0
    output_names: tuple[str, ...] = ()
    backend_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    times: RequestTimes = field(default_factory=RequestTimes)
    sink: ResponseSink | None = None
    cancelled: bool = False
    #: the request this one serves (an ensemble step's ensemble request): its cancellation is ours too
    parent: "InferenceRequest | None" = field(default=None, repr=False)
    #: release flags the backend set (pb_utils ``set_release_flags``); RESCHEDULE asks an iterative
    #: sequence batcher to run this request again
    release_flags: int = 1
    #: the request's ``tritonlite.tracing.RequestTrace`` when it is traced (an ensemble step: its parent's until submitted)
    trace: Any = None
    #: W3C ``traceparent`` a door received with the request (OpenTelemetry context propagation)
    trace_context: str = ""
    #: frontend timestamps a door records (``HTTP_RECV_START`` ...); a door that sets it finishes the trace itself
    trace_frontend: list[tuple[str, int]] | None = None
    #: False: the engine never samples this request for a trace of its own (a BLS request made without
    #: ``trace=request.trace()``, which Triton does not trace); a parent ``trace`` still makes it a child
    trace_sampled: bool = True

    def cancel(self) -> None:
        """Ask for cancellation: queued work is dropped, running Python models see is_cancelled()."""
        self.cancelled = True

    def mark_queued(self) -> None:
        self.times.queue_start = time.monotonic_ns()

    def is_cancelled(self) -> bool:
        return self.cancelled or (self.parent is not None and self.parent.is_cancelled())


__all__ = ["InferResult", "InferenceRequest", "parse_version", "RequestFlag", "RequestTimes", "ResponseSink", "RESPONSE_COMPLETE_FINAL",
           "REQUEST_RELEASE_ALL", "REQUEST_RELEASE_RESCHEDULE"]
