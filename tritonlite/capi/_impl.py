"""The Python side of every C call of ``include/tritonlite.h`` that is not pure C.

``libtritonlite.so`` (built by :mod:`tritonlite.capi.build`) starts an embedded interpreter on its first
call and runs ``install(ffi, lib, names)``, which registers one ``@ffi.def_extern`` function per name.
Each implementation receives the C arguments as cffi objects, returns ``None`` on success and raises on
failure; :func:`_guard` turns every exception (``TritonLiteError`` keeps its code, anything else becomes
INTERNAL) into a C error object, so no call can abort the process or return a silent NULL.

Every handle points at a small block this module allocates, whose first 8 bytes hold a magic number per kind,
and is looked up in one table: NULL, deleted (recent ones stay in a quarantine with the magic cleared) or
wrong-kind handles are INVALID_ARG errors instead of crashes. A response is a C struct (see ``build.py``) that
points into the result's numpy arrays (no copy for contiguous native-endian outputs; BYTES are serialised once),
so reading it is pure C; ``TRITONLITE_ResponseDelete`` releases the arrays.

The pure helpers (:func:`parse_engine_options`, :func:`array_from_raw`, :func:`raw_from_array`) need no
cffi and are shared with the Java bridge.
"""

from __future__ import annotations

import collections
import json
import math
import sys
from typing import Any, Callable, Iterator

import numpy as np

from tritonlite.datatypes import DataType, deserialize_bytes_tensor, output_datatype, serialize_bytes_tensor
from tritonlite.errors import ErrorCode, InvalidArgumentError, TritonLiteError, UnsupportedError
from tritonlite.request import InferenceRequest, InferResult, RequestFlag

#: the InferenceEngine keyword options a JSON options object may carry, and their JSON types
ENGINE_OPTIONS: dict[str, tuple[type, ...]] = {
    "model_control_mode": (str,),
    "startup_models": (list,),
    "strict_model_config": (bool,),
    "repository_poll_secs": (int, float),
    "model_load_thread_count": (int,),
    "strict_readiness": (bool,),
    "server_id": (str,),
    "cache_config": (dict,),  # the response cache, e.g. {"local": {"size": 1048576}} or {"redis": {...}}
}
RESPONSE_FINAL = 1


# ---- pure helpers (no cffi) ------------------------------------------------------------------------------
def parse_engine_options(text: str | None) -> dict[str, Any]:
    """The keyword options of ``InferenceEngine`` from a JSON object (None or blank = no options)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"options_json is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"options_json must be a JSON object, got {type(value).__name__}")
    for key, item in value.items():
        types = ENGINE_OPTIONS.get(key)
        if types is None:
            raise InvalidArgumentError(f"unknown engine option '{key}' (known: {', '.join(sorted(ENGINE_OPTIONS))})")
        if not isinstance(item, types) or (isinstance(item, bool) and bool not in types):
            raise InvalidArgumentError(f"engine option '{key}' must be {' or '.join(t.__name__ for t in types)}, got {json.dumps(item)}")
        if key == "startup_models" and not all(isinstance(m, str) for m in item):
            raise InvalidArgumentError("engine option 'startup_models' must be a list of model names")
    return value


def _np_dtype(dt: DataType) -> np.dtype:
    if dt is DataType.BF16:
        return np.dtype("<u2")
    return dt.numpy_dtype.newbyteorder("<") if dt.numpy_dtype.itemsize > 1 else dt.numpy_dtype


def array_from_raw(name: str, datatype: int, shape: tuple[int, ...], data: Any) -> np.ndarray:
    """A numpy array (a view of ``data``) for a raw input; BYTES ``data`` is Triton's length-prefixed form."""
    try:
        dt = DataType(int(datatype))
    except ValueError:
        dt = DataType.INVALID
    if dt is DataType.INVALID:
        raise InvalidArgumentError(f"input '{name}': invalid datatype {int(datatype)}")
    for d in shape:
        if d < 0:
            raise InvalidArgumentError(f"input '{name}': shape [{','.join(map(str, shape))}] has a negative dimension")
    count = math.prod(shape)
    nbytes = len(data)
    if dt is DataType.BYTES:
        try:
            arr = deserialize_bytes_tensor(data)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"input '{name}': {exc.message}") from None
        if arr.size != count:
            raise InvalidArgumentError(
                f"input '{name}': the BYTES buffer ({nbytes} bytes) holds {arr.size} elements, "
                f"shape [{','.join(map(str, shape))}] needs {count}"
            )
        return arr.reshape(shape)
    npd = _np_dtype(dt)
    expected = count * npd.itemsize
    if nbytes != expected:
        raise InvalidArgumentError(
            f"input '{name}': byte size {nbytes} does not match shape [{','.join(map(str, shape))}] "
            f"of {dt.name} ({expected} bytes expected)"
        )
    return np.frombuffer(data, dtype=npd).reshape(shape)


def raw_from_array(arr: Any, declared: DataType | None = None) -> tuple[DataType, tuple[int, ...], Any]:
    """(datatype, shape, C-contiguous little-endian buffer) of an output array; BYTES serialised."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "OSU":
        return DataType.BYTES, arr.shape, serialize_bytes_tensor(arr)
    dt = output_datatype(arr.dtype, declared)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder == "big"):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return dt, arr.shape, np.ascontiguousarray(arr)


def parse_version(version: int) -> int:
    """C versions: -1 means the version policy; otherwise a positive version number."""
    version = int(version)
    if version == -1 or version >= 1:
        return version
    raise InvalidArgumentError(f"invalid model version {version}: use -1 for the version policy or a number >= 1")


def parse_parameters(text: str | None) -> dict[str, Any]:
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"parameters are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgumentError("parameters must be a JSON object")
    for key, item in value.items():
        if not isinstance(item, (str, int, float, bool)):
            raise InvalidArgumentError(f"parameter '{key}' must be a string, number or boolean")
    return value


def error_code_and_message(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, TritonLiteError):
        return int(exc.code), exc.message
    return int(ErrorCode.INTERNAL), f"{type(exc).__name__}: {exc}"


def submit_with_callback(engine: Any, request: InferenceRequest, on_response: Callable[[InferResult | None, TritonLiteError | None, bool], None]) -> None:
    """Queue ``request`` and call ``on_response(result, error, final)`` for every response, from engine threads.

    The engine's push path for doors keeps the model's own final flag on each response (Triton's C
    callback semantics) for decoupled and regular models alike.
    """
    engine._submit_with_callback(request, on_response)


def decoupled_hint(exc: TritonLiteError, call: str) -> TritonLiteError:
    """The engine's "use stream_infer" message, reworded for a door whose streaming call is ``call``."""
    if isinstance(exc, UnsupportedError) and "decoupled" in exc.message and "stream_infer" in exc.message:
        return UnsupportedError(exc.message.replace("stream_infer", call))
    return exc


# ---- the C side ------------------------------------------------------------------------------------------
class _Request:
    """What a TRITONLITE_Request holds: the engine it was made for and everything set on it."""

    __slots__ = ("engine", "model", "version", "inputs", "outputs", "id", "parameters", "priority", "timeout_us", "correlation_id", "flags")

    def __init__(self, engine: Any, model: str, version: int) -> None:
        self.engine = engine
        self.model = model
        self.version = version
        self.inputs: dict[str, np.ndarray] = {}
        self.outputs: list[str] = []
        self.id = ""
        self.parameters: dict[str, Any] = {}
        self.priority = 0
        self.timeout_us = 0
        self.correlation_id = 0
        self.flags = 0

    def core(self) -> InferenceRequest:
        """A fresh core request (the C request stays reusable and may change right after submission)."""
        return InferenceRequest(
            model_name=self.model,
            inputs=dict(self.inputs),
            requested_outputs=tuple(self.outputs) if self.outputs else None,
            model_version=self.version,
            id=self.id,
            parameters=dict(self.parameters),
            priority=self.priority,
            timeout_us=self.timeout_us,
            correlation_id=self.correlation_id,
            flags=self.flags,
        )


class _Response:
    """What keeps a TRITONLITE_Response's memory alive: the C struct, its outputs array and every buffer."""

    __slots__ = ("struct", "keep")

    def __init__(self, struct: Any, keep: list[Any]) -> None:
        self.struct = struct
        self.keep = keep


#: numpy dtype (native byte order) -> Triton type number, for the output fast path
_FAST_OUT = {
    np.dtype(d): int(DataType.from_numpy(d))
    for d in (np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64)
}
#: Triton type number -> numpy dtype for fixed-size inputs (None: BYTES / INVALID)
_IN_DTYPES = tuple(None if dt in (DataType.INVALID, DataType.BYTES) else _np_dtype(dt) for dt in DataType)
_UINT16 = int(DataType.UINT16)
_MAGIC_ENGINE = 0x544C454E47494E45  # "TLENGINE"
_MAGIC_REQUEST = 0x544C524551554553  # "TLREQUES"
_MAGIC_RESPONSE = 0x544C5253505F5631  # "TLRSP_V1", also checked by the C readers


class _Api:
    """The implementations, bound to the library's ffi/lib."""

    def __init__(self, ffi: Any, lib: Any) -> None:
        self.ffi = ffi
        self.lib = lib
        #: public handle (cdata pointer, hashed by address) -> (object, the memory the handle points at)
        self.objects: dict[Any, tuple[object, Any]] = {}
        #: recently deleted handle memory, magic zeroed: a stale handle reads as invalid instead of freed memory
        self.quarantine: collections.deque[Any] = collections.deque(maxlen=1024)
        self.cstrings: dict[str, Any] = {}  # interned output / model names (bounded by the models' outputs)
        self.cshapes: dict[tuple[int, ...], Any] = {}
        self.empty = ffi.new("char[]", b"")
        assert lib.TL_MAGIC_RESPONSE == _MAGIC_RESPONSE
        from tritonlite.engine import InferenceEngine

        self.engine_type = InferenceEngine

    # ---- plumbing --------------------------------------------------------------------------------------
    def error(self, exc: BaseException) -> Any:
        code, message = error_code_and_message(exc)
        return self.lib.TRITONLITE_ErrorNew(code, message.replace("\0", "\\0").encode("utf-8", "replace"))

    def new_handle(self, obj: object, ctype: str, magic: int) -> Any:
        mem = self.ffi.new("struct tl_handle*")
        mem.magic = magic
        handle = self.ffi.cast(ctype, mem)
        self.objects[handle] = (obj, mem)
        return handle

    def lookup(self, ptr: Any, cls: type, what: str, pop: bool = False) -> Any:
        entry = self.objects.get(ptr)
        if entry is None or not isinstance(entry[0], cls):
            if not ptr:
                raise InvalidArgumentError(f"{what} must not be NULL")
            raise InvalidArgumentError(f"{what} is not a valid handle (deleted, or of another kind)")
        if pop:
            del self.objects[ptr]
            entry[1].magic = 0
            self.quarantine.append(entry[1])
        return entry[0]

    def engine(self, ptr: Any) -> Any:
        return self.lookup(ptr, self.engine_type, "engine")

    def string(self, ptr: Any, what: str, allow_null: bool = False) -> str | None:
        if not ptr:
            if allow_null:
                return None
            raise InvalidArgumentError(f"{what} must not be NULL")
        try:
            return self.ffi.string(ptr).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidArgumentError(f"{what} is not valid UTF-8") from None

    @staticmethod
    def out(ptr: Any, what: str) -> Any:
        if not ptr:
            raise InvalidArgumentError(f"{what} (output pointer) must not be NULL")
        return ptr

    def cstring(self, text: str) -> Any:
        c = self.cstrings.get(text)
        if c is None:
            c = self.cstrings.setdefault(text, self.ffi.new("char[]", text.encode("utf-8")))
        return c

    def cshape(self, shape: tuple[int, ...]) -> Any:
        c = self.cshapes.get(shape)
        if c is None:
            if len(self.cshapes) > 4096:
                self.cshapes.clear()  # live responses keep their own reference
            c = self.cshapes[shape] = self.ffi.new("int64_t[]", list(shape)) if shape else self.ffi.NULL
        return c

    def json_out(self, ptr: Any, value: Any) -> None:
        data = json.dumps(value).encode("utf-8")
        s = self.lib.tl_string_new(data, len(data))
        if not s:
            raise MemoryError("out of memory for the JSON string")
        ptr[0] = s

    def response(self, engine: Any, result: InferResult) -> Any:
        """A C TRITONLITE_Response over the result's arrays (no copy for contiguous native-endian outputs)."""
        ffi, lib = self.ffi, self.lib
        outputs = result.outputs
        n = len(outputs)
        struct = ffi.new("struct TRITONLITE_Response*")
        array = ffi.new("tl_output[]", n) if n else ffi.NULL
        keep: list[Any] = [array]
        set_output = lib.tl_set_output
        for i, (name, code, shape, buf) in enumerate(encoded_outputs(engine, result)):
            data = ffi.from_buffer(buf)
            cshape = self.cshape(shape)
            keep.append(data)
            keep.append(cshape)
            set_output(array, i, self.cstring(name), code, cshape, len(shape), data, len(data))
        if result.id:
            cid = ffi.new("char[]", result.id.encode("utf-8"))
            keep.append(cid)
        else:
            cid = self.empty
        lib.tl_set_response(struct, array, n, self.cstring(result.model_name or ""), version_number(result.model_version), cid)
        handle = ffi.cast("TRITONLITE_Response*", struct)
        self.objects[handle] = (_Response(struct, keep), struct)
        return handle

    # ---- engine ------------------------------------------------------------------------------------------
    def EngineNew(self, engine_out: Any, repository: Any, options: Any) -> None:
        self.out(engine_out, "engine")
        repo = self.string(repository, "model_repository")
        opts = parse_engine_options(self.string(options, "options_json", allow_null=True))
        engine = self.engine_type(repo, **opts)
        engine_out[0] = self.new_handle(engine, "TRITONLITE_Engine*", _MAGIC_ENGINE)

    def EngineDelete(self, engine_p: Any) -> None:
        engine = self.lookup(engine_p, self.engine_type, "engine", pop=True)
        try:
            engine.close()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001
                    pass

    def EngineIsLive(self, engine_p: Any, live: Any) -> None:
        engine = self.engine(engine_p)
        self.out(live, "live")[0] = bool(engine.is_live())

    def EngineIsReady(self, engine_p: Any, ready: Any) -> None:
        engine = self.engine(engine_p)
        self.out(ready, "ready")[0] = bool(engine.is_ready())

    def EngineModelIsReady(self, engine_p: Any, model: Any, version: int, ready: Any) -> None:
        engine = self.engine(engine_p)
        name = self.string(model, "model")
        v = parse_version(version)
        self.out(ready, "ready")[0] = bool(engine.is_model_ready(name, v))

    def EngineMetadata(self, engine_p: Any, json_out: Any) -> None:
        engine = self.engine(engine_p)
        self.json_out(self.out(json_out, "json"), engine.server_metadata())

    def EngineModelMetadata(self, engine_p: Any, model: Any, version: int, json_out: Any) -> None:
        engine = self.engine(engine_p)
        name = self.string(model, "model")
        self.out(json_out, "json")
        self.json_out(json_out, engine.model_metadata(name, parse_version(version)))

    def EngineModelConfig(self, engine_p: Any, model: Any, version: int, json_out: Any) -> None:
        engine = self.engine(engine_p)
        name = self.string(model, "model")
        self.out(json_out, "json")
        self.json_out(json_out, engine.model_config(name, parse_version(version)))

    def EngineModelStatistics(self, engine_p: Any, model: Any, version: int, json_out: Any) -> None:
        engine = self.engine(engine_p)
        name = self.string(model, "model", allow_null=True) or ""
        self.out(json_out, "json")
        self.json_out(json_out, engine.model_statistics(name, parse_version(version)))

    def EngineModelIndex(self, engine_p: Any, ready_only: bool, json_out: Any) -> None:
        engine = self.engine(engine_p)
        self.out(json_out, "json")
        self.json_out(json_out, engine.repository_index(ready=bool(ready_only)))

    def EngineLoadModel(self, engine_p: Any, model: Any, config_json: Any) -> None:
        engine = self.engine(engine_p)
        name = self.string(model, "model")
        engine.load_model(name, config=self.string(config_json, "config_json", allow_null=True))

    def EngineUnloadModel(self, engine_p: Any, model: Any) -> None:
        engine = self.engine(engine_p)
        engine.unload_model(self.string(model, "model"))

    # ---- requests ----------------------------------------------------------------------------------------
    def RequestNew(self, request_out: Any, engine_p: Any, model: Any, version: int) -> None:
        self.out(request_out, "request")
        engine = self.engine(engine_p)
        name = self.string(model, "model")
        v = parse_version(version)
        engine.model_config(name, v)  # NOT_FOUND / UNAVAILABLE now rather than at infer time
        request_out[0] = self.new_handle(_Request(engine, name, v), "TRITONLITE_Request*", _MAGIC_REQUEST)

    def request(self, ptr: Any) -> _Request:
        return self.lookup(ptr, _Request, "request")

    def RequestAddInput(self, request_p: Any, name_p: Any, datatype: int, shape_p: Any, dim_count: int, data: Any, byte_size: int) -> None:
        req = self.request(request_p)
        name = self.string(name_p, "input name")
        if dim_count and not shape_p:
            raise InvalidArgumentError(f"input '{name}': shape must not be NULL when dim_count is {dim_count}")
        if byte_size and not data:
            raise InvalidArgumentError(f"input '{name}': data must not be NULL when byte_size is {byte_size}")
        if dim_count > 64:
            raise InvalidArgumentError(f"input '{name}': dim_count {dim_count} is too large")
        shape = tuple(self.ffi.unpack(shape_p, dim_count)) if dim_count else ()
        npd = _IN_DTYPES[datatype] if 0 <= datatype < len(_IN_DTYPES) else None
        if npd is not None and min(shape, default=0) >= 0 and byte_size == math.prod(shape) * npd.itemsize:
            # fast path: one copy (the caller may reuse its buffer as soon as we return)
            arr = np.frombuffer(self.ffi.buffer(data, byte_size), npd).reshape(shape).copy() if byte_size else np.empty(shape, npd)
        else:  # BYTES, or an error with its message
            arr = array_from_raw(name, datatype, shape, self.ffi.buffer(data, byte_size) if byte_size else b"")
            if arr.dtype != object:
                arr = arr.copy()
        req.inputs[name] = arr

    def RequestRemoveAllInputs(self, request_p: Any) -> None:
        self.request(request_p).inputs.clear()

    def RequestAddRequestedOutput(self, request_p: Any, name_p: Any) -> None:
        req = self.request(request_p)
        name = self.string(name_p, "output name")
        if name not in req.outputs:
            req.outputs.append(name)

    def RequestRemoveAllRequestedOutputs(self, request_p: Any) -> None:
        self.request(request_p).outputs.clear()

    def RequestSetId(self, request_p: Any, id_p: Any) -> None:
        self.request(request_p).id = self.string(id_p, "id")

    def RequestSetSequence(self, request_p: Any, correlation_id: int, start: bool, end: bool) -> None:
        req = self.request(request_p)
        req.correlation_id = int(correlation_id)
        req.flags = (RequestFlag.SEQUENCE_START if start else 0) | (RequestFlag.SEQUENCE_END if end else 0)

    def RequestSetPriority(self, request_p: Any, priority: int) -> None:
        self.request(request_p).priority = int(priority)

    def RequestSetTimeoutMicroseconds(self, request_p: Any, timeout_us: int) -> None:
        self.request(request_p).timeout_us = int(timeout_us)

    def RequestSetParameters(self, request_p: Any, json_p: Any) -> None:
        req = self.request(request_p)
        req.parameters = parse_parameters(self.string(json_p, "json", allow_null=True))

    def RequestDelete(self, request_p: Any) -> None:
        self.lookup(request_p, _Request, "request", pop=True)

    # ---- inference ---------------------------------------------------------------------------------------
    def bound(self, engine_p: Any, request_p: Any) -> tuple[Any, _Request]:
        engine = self.engine(engine_p)
        req = self.request(request_p)
        if req.engine is not engine:
            raise InvalidArgumentError("the request was created for another engine")
        return engine, req

    def EngineInfer(self, engine_p: Any, request_p: Any, response_out: Any) -> None:
        engine, req = self.bound(engine_p, request_p)
        self.out(response_out, "response")
        try:
            result = engine._submit_request(req.core(), inline=True).result()
        except TritonLiteError as exc:
            raise decoupled_hint(exc, "TRITONLITE_EngineInferAsync") from None
        response_out[0] = self.response(engine, result)

    def EngineInferAsync(self, engine_p: Any, request_p: Any, callback: Any, userp: Any) -> None:
        engine, req = self.bound(engine_p, request_p)
        if not callback:
            raise InvalidArgumentError("callback must not be NULL")
        core = req.core()
        ffi = self.ffi

        def on_response(result: InferResult | None, error: BaseException | None, final: bool) -> None:
            resp, err = ffi.NULL, ffi.NULL
            try:
                if error is not None:
                    err = self.error(error)
                elif result is not None:
                    resp = self.response(engine, result)
            except BaseException as exc:  # noqa: BLE001 - the callback must still run
                err = self.error(exc)
            try:
                callback(resp, err, RESPONSE_FINAL if final else 0, userp)
            except BaseException:  # noqa: BLE001 - never raise into an engine thread
                pass

        submit_with_callback(engine, core, on_response)

    # ---- responses (reading them is C: TRITONLITE_ResponseOutput* / Model / Id) ---------------------------
    def ResponseDelete(self, response_p: Any) -> None:
        self.lookup(response_p, _Response, "response", pop=True)


def encoded_outputs(engine: Any, result: InferResult) -> Iterator[tuple[str, int, tuple[int, ...], Any]]:
    """(name, Triton type number, shape, C-contiguous little-endian buffer) per output, for the C and Java doors.

    Contiguous fixed-size arrays pass through without a copy; uint16 may really be BF16 (the config says);
    BYTES are serialised.
    """
    declared: dict[str, DataType] | None = None
    for name, value in result.outputs.items():
        code = _FAST_OUT.get(getattr(value, "dtype", None))
        if code is not None and code != _UINT16 and value.flags.c_contiguous:
            yield name, code, value.shape, value
            continue
        hint = None
        if code == _UINT16:
            if declared is None:
                declared = _declared_outputs(engine, result)
            hint = declared.get(name)
        dt, shape, buf = raw_from_array(value, hint)
        yield name, int(dt), shape, buf


def version_number(version: Any) -> int:
    """A result's model version as the C and Java APIs carry it (-1 when unknown)."""
    return int(version) if isinstance(version, int) or str(version).isdigit() else -1


def _declared_outputs(engine: Any, result: InferResult) -> dict[str, DataType]:
    """Config data types of the outputs (BF16 arrives as uint16 and is reported as BF16)."""
    try:
        cfg = engine.model_config(result.model_name, result.model_version or "")
        return {o["name"]: DataType.from_config(o.get("data_type", "TYPE_INVALID")) for o in cfg.get("output", [])}
    except Exception:  # noqa: BLE001 - a hint only
        return {}


_installed: _Api | None = None


def _guard(api: _Api, fn: Callable[..., None]) -> Callable[..., Any]:
    ffi = api.ffi

    def call(*args: Any) -> Any:
        try:
            fn(*args)
            return ffi.NULL
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an error object
            return api.error(exc)

    call.__name__ = fn.__name__
    return call


def install(ffi: Any, lib: Any, names: list[str]) -> _Api:
    """Register ``_tlpy_<name>`` for every name the library declares (called by the library's init code)."""
    global _installed
    api = _Api(ffi, lib)
    missing = [n for n in names if not callable(getattr(api, n, None))]
    if missing:
        raise ImportError(f"tritonlite.capi._impl lacks implementations for {missing}: rebuild or update tritonlite")
    for name in names:
        ffi.def_extern(name=f"_tlpy_{name}")(_guard(api, getattr(api, name)))
    _installed = api
    return api


__all__ = ["install", "parse_engine_options", "array_from_raw", "raw_from_array", "submit_with_callback", "ENGINE_OPTIONS"]
