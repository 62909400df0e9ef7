"""``inference.GRPCInferenceService``: every RPC of Triton's gRPC API on top of one engine.

Handlers run on the server's worker threads (a synchronous ``grpc.server``: measured faster than
``grpc.aio`` here, see benchmarks/README.md). ``ModelInfer`` runs the request inline on an idle model
instance in the worker thread, so a request crosses no thread hand-off. Errors become gRPC statuses
with Triton's codes (SPEC §3.4) and messages; a client that cancels (or whose deadline passes)
cancels its engine requests.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, Callable, Iterator

import grpc
from google.protobuf import json_format

from tritonlite.engine import InferenceEngine, parse_version
from tritonlite.errors import (
    InternalError,
    InvalidArgumentError,
    TritonLiteError,
    UnsupportedError,
)
from tritonlite.grpc import frontend_trace
from tritonlite.grpc.codec import Malformed, decode_infer_request, encode_infer_response, param_value
from tritonlite.grpc.stream import StreamSession
from tritonlite.protocol import server_metadata
from tritonlite.protocol.models import ModelInfo, model_info
from tritonlite.protocol.settings import settings_for
from tritonlite.protocol.shm import SHM_DISABLED, registry_for
from tritonlite.protocol.status import grpc_status_name
from tritonlite.protos import grpc_service_pb2 as pb
from tritonlite.request import CXX_INTEGER_PREFIX

_log = logging.getLogger("tritonlite.grpc")

SERVICE = "inference.GRPCInferenceService"
HEALTH_SERVICE = "grpc.health.v1.Health"


DECOUPLED_UNARY = "ModelInfer RPC doesn't support models with decoupled transaction policy"
#: what Triton (grpc++) answers a request message that is not a valid protobuf of its type: INTERNAL
PARSE_ERROR = "Unable to parse request"


def _deserializer(cls: Any) -> Callable[[bytes], Any]:
    parse = cls.FromString
    full_name = cls.DESCRIPTOR.full_name

    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # DecodeError, or anything protobuf raises on garbage
            return Malformed(f"failed to parse the request as '{full_name}': {exc}")

    return deserialize


def _timed_deserializer(cls: Any, engine: InferenceEngine) -> Callable[[bytes], Any]:
    """``ModelInfer``'s deserializer: while tracing is on, the message comes with its read stamps.

    grpcio does not show when the server began waiting for a unary call, so GRPC_WAITREAD_START is
    when the request's bytes were in hand and GRPC_WAITREAD_END when they were parsed.
    """
    plain = _deserializer(cls)
    tracer = engine.tracer

    def deserialize(data: bytes) -> Any:
        if not tracer.active:
            return plain(data)
        start = time.monotonic_ns()
        message = plain(data)
        if type(message) is Malformed:
            return message
        return frontend_trace.Received(message, start, time.monotonic_ns())

    return deserialize


def status_code(exc: BaseException) -> grpc.StatusCode:
    if isinstance(exc, TritonLiteError):
        return grpc.StatusCode[grpc_status_name(exc)]
    return grpc.StatusCode.INTERNAL


def _abort(context: grpc.ServicerContext, exc: BaseException) -> None:
    if not isinstance(exc, TritonLiteError):
        _log.error("gRPC handler failed", exc_info=exc)
        exc = InternalError(f"{type(exc).__name__}: {exc}")
    context.abort(status_code(exc), exc.message)  # raises: grpc ends the call with this status


def _unary(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Malformed requests → INVALID_ARGUMENT; engine errors → their status; bugs → INTERNAL."""

    def handler(self: "InferenceServicer", request: Any, context: grpc.ServicerContext) -> Any:
        if type(request) is Malformed:
            context.abort(grpc.StatusCode.INTERNAL, PARSE_ERROR)
        try:
            return fn(self, request, context)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            error: BaseException = exc
        _abort(context, error)

    handler.__name__ = fn.__name__
    handler.__doc__ = fn.__doc__
    return handler


class InferenceServicer:
    """Implements the 20 RPCs; :meth:`handlers` gives their method handlers for a ``grpc`` server."""

    def __init__(self, engine: InferenceEngine, *, allow_shm: bool = False) -> None:
        self.engine = engine
        self.allow_shm = allow_shm
        self.shm = registry_for(engine)
        self.settings = settings_for(engine)
        self._readers: set[threading.Thread] = set()
        self._readers_lock = threading.Lock()

    # ---- registration -----------------------------------------------------------------------------------
    def handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """Method handlers for every RPC the service descriptor declares."""
        service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
        out: dict[str, grpc.RpcMethodHandler] = {}
        for method in service.methods:
            req_cls = getattr(pb, method.input_type.name)
            resp_cls = getattr(pb, method.output_type.name)
            behaviour = getattr(self, method.name)
            deserializer = _timed_deserializer(req_cls, self.engine) if method.name == "ModelInfer" else _deserializer(req_cls)
            kwargs = dict(request_deserializer=deserializer, response_serializer=resp_cls.SerializeToString)
            if method.client_streaming and method.server_streaming:
                out[method.name] = grpc.stream_stream_rpc_method_handler(behaviour, **kwargs)
            else:
                out[method.name] = grpc.unary_unary_rpc_method_handler(behaviour, **kwargs)
        return out

    def health_handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """``grpc.health.v1.Health/Check``: SERVING while the engine is ready (hand-encoded, no proto)."""

        def check(request: bytes, context: grpc.ServicerContext) -> bytes:
            return b"\x08\x01" if self.engine.is_ready() else b"\x08\x02"  # field 1 (status): SERVING / NOT_SERVING

        return {"Check": grpc.unary_unary_rpc_method_handler(check, request_deserializer=bytes, response_serializer=bytes)}

    def _info(self, name: str) -> Callable[[str], ModelInfo]:
        return lambda version: model_info(self.engine, name, parse_version(version))

    # ---- health and metadata ------------------------------------------------------------------------------
    @_unary
    def ServerLive(self, request: pb.ServerLiveRequest, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.engine.is_live())

    @_unary
    def ServerReady(self, request: pb.ServerReadyRequest, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.engine.is_ready())

    @_unary
    def ModelReady(self, request: pb.ModelReadyRequest, context: Any) -> pb.ModelReadyResponse:
        # Triton: only a malformed version is an error; an unknown model or version is simply not ready
        version = parse_version(request.version)
        return pb.ModelReadyResponse(ready=self.engine.is_model_ready(request.name, version))

    @_unary
    def ServerMetadata(self, request: pb.ServerMetadataRequest, context: Any) -> pb.ServerMetadataResponse:
        meta = server_metadata(self.engine)
        return pb.ServerMetadataResponse(name=meta["name"], version=meta["version"], extensions=meta["extensions"])

    @_unary
    def ModelMetadata(self, request: pb.ModelMetadataRequest, context: Any) -> pb.ModelMetadataResponse:
        meta = self.engine.model_metadata(request.name, request.version)
        resp = pb.ModelMetadataResponse(name=meta["name"], versions=meta["versions"], platform=meta["platform"])
        for src, dst in ((meta["inputs"], resp.inputs), (meta["outputs"], resp.outputs)):
            for t in src:
                dst.add(name=t["name"], datatype=t["datatype"], shape=t["shape"])
        return resp

    @_unary
    def ModelConfig(self, request: pb.ModelConfigRequest, context: Any) -> pb.ModelConfigResponse:
        cfg = self.engine.model_config(request.name, request.version)
        resp = pb.ModelConfigResponse()
        json_format.ParseDict(cfg, resp.config, ignore_unknown_fields=True)
        return resp

    @_unary
    def ModelStatistics(self, request: pb.ModelStatisticsRequest, context: Any) -> pb.ModelStatisticsResponse:
        stats = self.engine.model_statistics(request.name, request.version)
        resp = pb.ModelStatisticsResponse()
        json_format.ParseDict(stats, resp, ignore_unknown_fields=True)
        return resp

    # ---- inference ----------------------------------------------------------------------------------------
    @_unary
    def ModelInfer(self, request: pb.ModelInferRequest | frontend_trace.Received, context: Any) -> pb.ModelInferResponse:
        read = None
        if type(request) is frontend_trace.Received:  # tracing is on: the read's stamps came with it
            read, request = request, request.message
        decoded = decode_infer_request(request, self.shm)
        core = decoded.request
        context.add_callback(core.cancel)  # runs when the call ends: a cancelled call cancels the request
        if self.engine.tracer.active:  # W3C trace context for OpenTelemetry mode, Triton's GRPC_* timestamps
            core.trace_context = next((str(v) for k, v in context.invocation_metadata() or () if k == "traceparent"), "")
            if read is not None:
                frontend_trace.received(core, read.read_start_ns, read.read_end_ns)
        fut = self.engine._submit_request(core, True)  # inline on an idle instance: no thread hand-off
        traced = core.trace is not None and core.trace.frontend_pending
        if traced:  # GRPC_SEND_END once the call has sent its response (or ended without it)
            sent = functools.partial(frontend_trace.send_ended, core)
            if not context.add_callback(sent):
                sent()
        try:
            try:
                result = fut.result()
            except UnsupportedError as exc:
                if "decoupled" in exc.message:
                    raise UnsupportedError(DECOUPLED_UNARY) from None
                raise
            response = encode_infer_response(result, decoded, self._info(core.model_name), self.shm)
            if traced:
                frontend_trace.response_complete(core)
        finally:
            if traced:  # the response, or the error status, is sent once this handler returns
                frontend_trace.send_started(core)
        return response

    def ModelStreamInfer(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        metadata = context.invocation_metadata() or ()
        grpc_error_mode = any(k == "triton_grpc_error" and str(v).lower() == "true" for k, v in metadata)
        session = StreamSession(self.engine, self.shm, self._info, grpc_error_mode)
        if self.engine.tracer.active:  # the stream's W3C trace context parents each of its requests
            session.trace_context = next((str(v) for k, v in metadata if k == "traceparent"), "")
        context.add_callback(session.close)
        # the reader ends when the request stream does, which for an aborted call is only after this
        # handler has returned: the server joins readers at stop instead of here
        reader = threading.Thread(target=self._read, args=(session, request_iterator), name="tritonlite.grpc.stream", daemon=True)
        with self._readers_lock:
            self._readers.add(reader)
        reader.start()
        try:
            for item in session.responses():
                if isinstance(item, BaseException):  # triton_grpc_error mode: the first error ends the call
                    _abort(context, item)
                yield item
        finally:
            session.close()

    def _read(self, session: "StreamSession", request_iterator: Iterator[Any]) -> None:
        try:
            session.read(request_iterator)
        finally:
            with self._readers_lock:
                self._readers.discard(threading.current_thread())

    def join_readers(self, timeout: float = 5.0) -> None:
        """Wait for the stream reader threads (after the server stopped, their streams have ended)."""
        with self._readers_lock:
            readers = list(self._readers)
        for reader in readers:
            reader.join(timeout)

    # ---- repository ---------------------------------------------------------------------------------------
    @_unary
    def RepositoryIndex(self, request: pb.RepositoryIndexRequest, context: Any) -> pb.RepositoryIndexResponse:
        if request.repository_name:
            raise UnsupportedError("'repository_name' specification is not supported")
        resp = pb.RepositoryIndexResponse()
        for entry in self.engine.repository_index(ready=request.ready):
            resp.models.add(
                name=entry["name"],
                version=entry.get("version", ""),
                state=entry.get("state", ""),
                reason=entry.get("reason", ""),
            )
        return resp

    @_unary
    def RepositoryModelLoad(self, request: pb.RepositoryModelLoadRequest, context: Any) -> pb.RepositoryModelLoadResponse:
        if request.repository_name:
            raise UnsupportedError("'repository_name' specification is not supported")
        config: str | None = None
        files: dict[str, bytes] = {}
        for key, value in request.parameters.items():
            kind = value.WhichOneof("parameter_choice")
            if key == "config":
                if kind != "string_param":
                    raise InvalidArgumentError(f"invalid value type for load parameter '{key}', expected string_param.")
                config = value.string_param
            elif key.startswith("file:"):
                if kind != "bytes_param":
                    raise InvalidArgumentError(f"invalid value type for load parameter '{key}', expected bytes_param.")
                files[key] = value.bytes_param
            else:
                raise InvalidArgumentError(f"unrecognized load parameter '{key}'.")
        self.engine.load_model(request.model_name, config=config, files=files or None)
        return pb.RepositoryModelLoadResponse()

    @_unary
    def RepositoryModelUnload(self, request: pb.RepositoryModelUnloadRequest, context: Any) -> pb.RepositoryModelUnloadResponse:
        if request.repository_name:
            raise UnsupportedError("'repository_name' specification is not supported")
        dependents = False
        param = request.parameters.get("unload_dependents")
        if param is not None:
            if param.WhichOneof("parameter_choice") != "bool_param":
                raise InvalidArgumentError("invalid value type for 'unload_dependents' parameter, expected bool_param.")
            dependents = param.bool_param
        self.engine.unload_model(request.model_name, unload_dependents=dependents)
        return pb.RepositoryModelUnloadResponse()

    # ---- shared memory ------------------------------------------------------------------------------------
    def _require_shm(self) -> None:
        if not self.allow_shm:
            raise UnsupportedError(SHM_DISABLED)

    @_unary
    def SystemSharedMemoryStatus(self, request: Any, context: Any) -> pb.SystemSharedMemoryStatusResponse:
        resp = pb.SystemSharedMemoryStatusResponse()
        for r in self.shm.system_status(request.name):
            resp.regions[r["name"]].CopyFrom(
                pb.SystemSharedMemoryStatusResponse.RegionStatus(
                    name=r["name"], key=r["key"], offset=r["offset"], byte_size=r["byte_size"]
                )
            )
        return resp

    @_unary
    def SystemSharedMemoryRegister(self, request: Any, context: Any) -> pb.SystemSharedMemoryRegisterResponse:
        self._require_shm()
        self.shm.register_system(request.name, request.key, request.offset, request.byte_size)
        return pb.SystemSharedMemoryRegisterResponse()

    @_unary
    def SystemSharedMemoryUnregister(self, request: Any, context: Any) -> pb.SystemSharedMemoryUnregisterResponse:
        self._require_shm()
        self.shm.unregister_system(request.name)
        return pb.SystemSharedMemoryUnregisterResponse()

    @_unary
    def CudaSharedMemoryStatus(self, request: Any, context: Any) -> pb.CudaSharedMemoryStatusResponse:
        resp = pb.CudaSharedMemoryStatusResponse()
        for r in self.shm.cuda_status(request.name):
            resp.regions[r["name"]].CopyFrom(
                pb.CudaSharedMemoryStatusResponse.RegionStatus(name=r["name"], device_id=r["device_id"], byte_size=r["byte_size"])
            )
        return resp

    @_unary
    def CudaSharedMemoryRegister(self, request: Any, context: Any) -> pb.CudaSharedMemoryRegisterResponse:
        self._require_shm()
        self.shm.register_cuda(request.name, request.raw_handle, request.device_id, request.byte_size)
        return pb.CudaSharedMemoryRegisterResponse()

    @_unary
    def CudaSharedMemoryUnregister(self, request: Any, context: Any) -> pb.CudaSharedMemoryUnregisterResponse:
        self._require_shm()
        self.shm.unregister_cuda(request.name)
        return pb.CudaSharedMemoryUnregisterResponse()

    # ---- trace and logging --------------------------------------------------------------------------------
    @_unary
    def TraceSetting(self, request: pb.TraceSettingRequest, context: Any) -> pb.TraceSettingResponse:
        model = request.model_name
        if model and not self.engine.is_model_ready(model):
            raise InvalidArgumentError(f"Request for unknown model : {model}")
        if len(request.settings):
            current = self.settings.update_trace_settings(_trace_updates(request.settings), model)
        else:
            current = self.settings.trace_settings(model)
        resp = pb.TraceSettingResponse()
        for key, value in current.items():
            resp.settings[key].value.extend(value if isinstance(value, list) else [str(value)])
        return resp

    @_unary
    def LogSettings(self, request: pb.LogSettingsRequest, context: Any) -> pb.LogSettingsResponse:
        if len(request.settings):
            current = self.settings.update_log_settings(_log_updates(request.settings))
        else:
            current = self.settings.log_settings()
        resp = pb.LogSettingsResponse()
        for key, value in current.items():
            target = resp.settings[key]
            if isinstance(value, bool):
                target.bool_param = value
            elif isinstance(value, int):
                target.uint32_param = value
            else:
                target.string_param = str(value)
        return resp


# ---- Triton's gRPC settings parsing (grpc_server.cc): known keys only, unknown ones are ignored --------------
_TRACE_LEVELS = ("OFF", "TIMESTAMPS", "TENSORS")
#: numeric trace settings: (C++ type the value is stored in, its printed range)
_TRACE_NUMBERS = {"trace_rate": (2**32, "[ 0, 4294967295 ]"), "trace_count": (None, "[ -1, 2147483647 ]"),
                  "log_frequency": (2**32, "[ 0, 4294967295 ]")}


def _trace_updates(settings: Any) -> dict[str, list[str]]:
    """The trace update a TraceSettingRequest asks for, with Triton's gRPC errors (an empty list clears a key)."""
    if "trace_file" in settings:
        raise UnsupportedError("trace file location can not be updated through network protocol")
    updates: dict[str, list[str]] = {}
    if "trace_level" in settings:
        values = list(settings["trace_level"].value)
        if not values:
            updates["trace_level"] = []
        else:
            if "OFF" in values and len(values) > 1:
                raise InvalidArgumentError("Expect only one trace level 'OFF' is specified")
            levels = [v for v in _TRACE_LEVELS if v in values]  # other names are ignored, as in Triton
            if levels:
                updates["trace_level"] = levels
    for key, (wrap, bounds) in _TRACE_NUMBERS.items():
        if key not in settings:
            continue
        values = list(settings[key].value)
        if not values:
            updates[key] = []
            continue
        if len(values) > 1:
            raise InvalidArgumentError(f"expect only 1 value for '{key}'")
        match = CXX_INTEGER_PREFIX.match(values[0])  # std::stoi: leading digits count, the rest is ignored
        if match is None:
            raise InvalidArgumentError(f"Unable to parse '{key}', got: {values[0]}")
        number = int(match.group(1))
        if not -(2**31) <= number < 2**31:
            raise InvalidArgumentError(f"Unable to parse '{key}', value is out of range {bounds}, got: {values[0]}")
        if key == "trace_count" and number < -1:
            raise InvalidArgumentError(f"Unable to parse '{key}'. Expecting value >= -1, got: {values[0]}")
        updates[key] = [str(number % wrap if wrap else number)]  # an int stored in a uint32_t wraps
    return updates


_LOG_KINDS = {"log_info": ("bool_param", "boolean"), "log_warning": ("bool_param", "boolean"),
              "log_error": ("bool_param", "boolean"), "log_verbose_level": ("uint32_param", "int32"),
              "log_format": ("string_param", "string")}


def _log_updates(settings: Any) -> dict[str, Any]:
    """The log update a LogSettingsRequest asks for, with Triton's gRPC errors; unknown keys are ignored."""
    if "log_file" in settings:
        raise UnsupportedError("log file location can not be updated through network protocol")
    updates: dict[str, Any] = {}
    for key, (kind, wording) in _LOG_KINDS.items():
        if key not in settings:
            continue
        value = settings[key]
        if value.WhichOneof("parameter_choice") != kind:
            raise InvalidArgumentError(f"expect {wording} for '{key}'")
        v = param_value(value)
        if key == "log_format" and v not in ("default", "ISO8601"):
            raise InvalidArgumentError(f"invalid argument for log_format, got: {v}")
        updates[key] = v
    return updates


__all__ = ["InferenceServicer", "Malformed", "SERVICE", "HEALTH_SERVICE", "status_code"]
