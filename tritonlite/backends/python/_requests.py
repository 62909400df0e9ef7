"""pb_utils requests and responses: incoming requests, responses, the decoupled sender, BLS.

Incoming requests wrap tritonlite's core request (inputs are the engine's arrays, not copies);
responses convert to :class:`~tritonlite.request.InferResult`. BLS builds a core request and hands
it to the engine of the current model (``_submit_request``; ``_submit_stream`` for decoupled calls).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Iterator, Sequence

import numpy as np

from tritonlite.backends.python._context import require_engine
from tritonlite.backends.python._types import (
    TRITONSERVER_REQUEST_RELEASE_ALL,
    TRITONSERVER_RESPONSE_COMPLETE_FINAL,
    InferenceTrace,
    PreferredMemory,
    Tensor,
    TritonError,
    TritonModelException,
    as_text,
)
from tritonlite.errors import TritonLiteError, error_from_code
from tritonlite.request import InferenceRequest as _CoreRequest
from tritonlite.request import InferResult


def _check_parameters(parameters: Any) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise TritonModelException(f"Expected parameters to be a dict, found type '{type(parameters)}'.")
    for key, value in parameters.items():
        if not isinstance(key, str):
            raise TritonModelException(f"Expect parameters keys to have type str, found type {type(key)}")
        if not isinstance(value, (bool, int, str)):
            raise TritonModelException(f"Expect parameters values to have type bool/int/str, found type {type(value)}")
    return dict(parameters)


class InferenceResponse:
    """One response: output tensors, or an error (then the tensors are ignored)."""

    __slots__ = ("_outputs", "_error", "_parameters")

    def __init__(self, output_tensors: Sequence[Tensor] | None = None, error: TritonError | None = None,
                 parameters: dict[str, Any] | None = None) -> None:
        outputs = list(output_tensors) if output_tensors is not None else []
        for t in outputs:
            if not isinstance(t, Tensor):
                raise TypeError(f"output_tensors must hold pb_utils.Tensor objects, found type '{type(t)}'")
        if error is not None and not isinstance(error, TritonError):
            raise TypeError(f"error must be a pb_utils.TritonError, found type '{type(error)}'")
        self._outputs = outputs
        self._error = error
        self._parameters = _check_parameters(parameters)

    def output_tensors(self) -> list[Tensor]:
        return self._outputs

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> TritonError | None:
        return self._error

    def parameters(self) -> str:
        return json.dumps(self._parameters)


def _to_infer_result(response: InferenceResponse, output_names: Sequence[str]) -> InferResult:
    """Turn a model's response into the core result, keeping only the requested outputs."""
    if response._error is not None:
        err = response._error
        return InferResult(parameters=dict(response._parameters), error=error_from_code(err.code(), err.message()))
    if output_names:
        wanted = output_names if isinstance(output_names, (set, frozenset)) else set(output_names)
        outputs = {t._name: t.as_numpy() for t in response._outputs if t._name in wanted}
    else:
        outputs = {t._name: t.as_numpy() for t in response._outputs}
    return InferResult(outputs=outputs, parameters=dict(response._parameters))


def _from_infer_result(result: InferResult | None, error: BaseException | None = None) -> InferenceResponse:
    """Turn a core result (or the error it failed with) into what a BLS caller sees."""
    if error is None and result is not None:
        error = result.error
    if error is not None:
        code = int(getattr(error, "code", TritonError.INTERNAL))
        return InferenceResponse(error=TritonError(str(error), code))
    if result is None:
        return InferenceResponse()
    return InferenceResponse([Tensor._wrap(k, v) for k, v in result.outputs.items()], parameters=result.parameters or None)


class InferenceResponseSender:
    """Streams responses of one request to its core sink; usable from any thread after execute returns."""

    __slots__ = ("_core", "_decoupled", "_lock", "_closed", "_sent", "_pending")

    def __init__(self, core: _CoreRequest, decoupled: bool) -> None:
        self._core = core
        self._decoupled = decoupled
        self._lock = threading.Lock()
        self._closed = False
        self._sent = 0
        self._pending: InferenceResponse | None = None

    def _claim(self, response: InferenceResponse | None, flags: int) -> None:
        """python_backend's state rules; the returned-list path uses them too."""
        if flags != TRITONSERVER_RESPONSE_COMPLETE_FINAL and flags != 0:
            raise TritonModelException("Unable to send response. Unsupported flag provided.")
        if flags == 0 and response is None:
            raise TritonModelException("Inference Response object must be provided when the response flags is set to zero.")
        with self._lock:
            if not self._decoupled:
                if response is not None and self._sent > 0:
                    raise TritonModelException("Unable to send response. Non-decoupled model cannot send more than one response.")
                if response is None and flags == TRITONSERVER_RESPONSE_COMPLETE_FINAL and self._sent == 0:
                    raise TritonModelException(
                        "Unable to send response. Non-decoupled model cannot send complete final before sending a response."
                    )
            if self._closed:
                raise TritonModelException("Unable to send response. Response sender has been closed.")
            if flags == TRITONSERVER_RESPONSE_COMPLETE_FINAL:
                self._closed = True
            self._sent += 1

    def send(self, response: InferenceResponse | None = None, flags: int = 0) -> None:
        if response is not None and not isinstance(response, InferenceResponse):
            raise TypeError(f"Expected an 'InferenceResponse' object, found type '{type(response)}'.")
        self._claim(response, flags)
        final = flags == TRITONSERVER_RESPONSE_COMPLETE_FINAL
        if not self._decoupled:
            # a non-decoupled request gets exactly one final result: hold the response until FINAL
            if not final:
                self._pending = response
                return
            if response is None:
                response, self._pending = self._pending, None
        sink = self._core.sink
        if sink is None:
            raise TritonModelException("Unable to send response. The request has no response sink.")
        result = _to_infer_result(response, self._core.output_names) if response is not None else None
        try:
            sink.send(result, final=final)
        except TritonLiteError as exc:
            raise TritonModelException(str(exc)) from exc

    def is_cancelled(self) -> bool:
        return self._core.is_cancelled()


# --------------------------------------------------------------------------- requests
_MISSING: Any = object()


class InferenceRequest:
    """A request: incoming (wrapping a core request) or built by the model for BLS."""

    __slots__ = ("_core", "_inputs", "_request_id", "_correlation_id", "_output_names", "_model_name",
                 "_model_version", "_flags", "_timeout", "_preferred_memory", "_trace", "_parameters",
                 "_sender", "_decoupled", "_release_flags")

    def __init__(self, request_id: str | bytes = "", correlation_id: int | str = 0, inputs: Sequence[Tensor] = _MISSING,
                 requested_output_names: Sequence[str | bytes] = _MISSING, model_name: str | bytes = _MISSING,
                 model_version: int = -1, flags: int = 0, timeout: int = 0,
                 preferred_memory: PreferredMemory | None = None, trace: InferenceTrace | None = None,
                 parameters: dict[str, Any] | None = None) -> None:
        for arg, value in (("inputs", inputs), ("requested_output_names", requested_output_names), ("model_name", model_name)):
            if value is _MISSING:
                raise TypeError(f"InferenceRequest() missing required argument '{arg}'")
        # names are str or bytes, as python_backend's std::string arguments take them
        model_name = as_text(model_name, "model_name")
        request_id = as_text(request_id, "request_id")
        if isinstance(requested_output_names, (str, bytes, bytearray)):
            raise TypeError("requested_output_names must be a list of names, not a single str or bytes")
        output_names = [as_text(n, "requested_output_names item") for n in requested_output_names]
        if not isinstance(correlation_id, (int, str)):
            raise TritonModelException("Correlation ID must be integer or string")
        if not isinstance(model_version, (int, np.integer)):  # an int64 in python_backend: no str, no bytes
            raise TypeError(f"model_version must be an int, found type '{type(model_version)}'")
        self._core = None
        self._inputs = list(inputs)
        self._request_id = request_id
        self._correlation_id = correlation_id
        self._output_names = output_names
        self._model_name = model_name
        self._model_version = int(model_version)
        self._flags = int(flags)
        self._timeout = int(timeout)
        self._preferred_memory = preferred_memory or PreferredMemory()
        if trace is not None and not isinstance(trace, InferenceTrace):
            raise TypeError(f"trace must be a pb_utils.InferenceTrace (request.trace()), found type '{type(trace)}'")
        self._trace = trace or InferenceTrace()
        self._parameters = json.dumps(_check_parameters(parameters))
        self._sender = None
        self._decoupled = False
        self._release_flags = TRITONSERVER_REQUEST_RELEASE_ALL

    @classmethod
    def _incoming(cls, core: _CoreRequest, model_name: str, model_version: int, decoupled: bool) -> "InferenceRequest":
        """Wrap a core request handed to execute; the input arrays are shared, not copied."""
        self = cls.__new__(cls)
        self._core = core
        self._inputs = [Tensor._wrap(k, v) for k, v in core.backend_inputs.items()]
        self._request_id = core.id
        self._correlation_id = core.correlation_id
        self._output_names = list(core.output_names)
        self._model_name = model_name
        self._model_version = model_version
        self._flags = core.flags
        self._timeout = core.timeout_us
        self._preferred_memory = PreferredMemory()
        self._trace = None  # made on first request.trace() from the core request's trace
        self._parameters = None
        self._sender = None
        self._decoupled = decoupled
        self._release_flags = TRITONSERVER_REQUEST_RELEASE_ALL
        return self

    def inputs(self) -> list[Tensor]:
        return self._inputs

    def request_id(self) -> str:
        return self._request_id

    def correlation_id(self) -> int | str:
        return self._correlation_id

    def flags(self) -> int:
        return self._flags

    def set_flags(self, flags: int) -> None:
        self._flags = int(flags)

    def timeout(self) -> int:
        return self._timeout

    def model_name(self) -> str:
        return self._model_name

    def model_version(self) -> int:
        return self._model_version

    def parameters(self) -> str:
        if self._parameters is None:
            self._parameters = json.dumps(self._core.parameters if self._core is not None else {})
        return self._parameters

    def trace(self) -> InferenceTrace:
        if self._trace is None:
            core = self._core
            self._trace = InferenceTrace._of(core.trace)
        return self._trace

    def requested_output_names(self) -> list[str]:
        return self._output_names

    def get_response_sender(self) -> InferenceResponseSender:
        if self._core is None:
            raise TritonModelException("Only requests passed to execute have a response sender.")
        if self._sender is None:
            self._sender = InferenceResponseSender(self._core, self._decoupled)
        return self._sender

    def is_cancelled(self) -> bool:
        return self._core.is_cancelled() if self._core is not None else False

    def set_release_flags(self, flags: int) -> None:
        """RESCHEDULE asks an iterative sequence batcher to run this request again (python_backend)."""
        self._release_flags = int(flags)
        if self._core is not None:
            self._core.release_flags = int(flags)

    # ---- BLS
    def _to_core(self) -> _CoreRequest:
        return _CoreRequest(
            model_name=self._model_name,
            inputs={t.name(): t.as_numpy() for t in self._inputs},
            requested_outputs=tuple(self._output_names) or None,
            model_version=self._model_version,
            id=self._request_id,
            parameters=json.loads(self.parameters()),
            timeout_us=self._timeout,
            correlation_id=self._correlation_id,
            flags=self._flags,
            trace=self.trace()._handle,  # the engine makes it a child of the caller's trace
            trace_sampled=False,  # Triton traces BLS requests only through trace=request.trace()
        )

    def exec(self, decoupled: bool = False) -> "InferenceResponse | ResponseIterator":
        """Run the request on another model of the engine and wait (BLS)."""
        engine = require_engine("BLS")
        core = self._to_core()
        if decoupled:
            return ResponseIterator(engine._submit_stream(core), core)
        future = engine._submit_request(core, inline=True)  # this thread waits anyway
        try:
            return _from_infer_result(future.result())
        except TritonLiteError as exc:
            return _from_infer_result(None, exc)

    def async_exec(self, decoupled: bool = False) -> Any:
        """Awaitable form of :meth:`exec`; the request is submitted now, awaited on the caller's loop."""
        engine = require_engine("BLS")
        core = self._to_core()
        if decoupled:
            iterator = ResponseIterator(engine._submit_stream(core), core)

            async def _stream() -> ResponseIterator:
                return iterator

            return _stream()
        future = engine._submit_request(core)

        async def _wait() -> InferenceResponse:
            try:
                return _from_infer_result(await asyncio.wrap_future(future))
            except TritonLiteError as exc:
                return _from_infer_result(None, exc)

        return _wait()


class ResponseIterator:
    """Responses of a decoupled BLS call, in order; ``cancel()`` cancels the BLS request."""

    def __init__(self, results: Any, core: _CoreRequest) -> None:
        self._results = iter(results)
        self._source = results
        self._core = core

    def __iter__(self) -> Iterator[InferenceResponse]:
        return self

    def __next__(self) -> InferenceResponse:
        try:
            item = next(self._results)
        except TritonLiteError as exc:
            return _from_infer_result(None, exc)
        return _from_infer_result(item)

    def cancel(self) -> None:
        cancel = getattr(self._source, "cancel", None)
        if callable(cancel):
            cancel()
        else:
            self._core.cancel()


__all__ = ["InferenceRequest", "InferenceResponse", "InferenceResponseSender", "ResponseIterator"]
