"""JPype implementations of the ``org.tritonlite`` SPI: ``EngineProvider`` and ``EngineBackend``.

Java calls land here on the calling Java thread; every call goes straight to the public
:class:`~tritonlite.InferenceEngine` API. Tensor data crosses without copies:

* inputs: the Java tensor's direct ``ByteBuffer`` is viewed by numpy in place (``memoryview``); JPype's
  view keeps the Java buffer alive as long as numpy uses it;
* outputs: ``jpype.nio.convertToDirectBuffer`` wraps the numpy output's memory in a direct buffer (JPype
  keeps the array alive while Java references the buffer); Java sees it read-only. Arrays that are not
  writable or not contiguous, and BYTES outputs (serialised), are copied once.

Every Python exception becomes an ``org.tritonlite.TritonLiteException`` with Triton's code.
"""

from __future__ import annotations

import atexit
import logging
import math
import struct
import threading
import weakref
from typing import Any

import jpype
import jpype.nio
import numpy as np
from jpype import JImplements, JOverride

from tritonlite import __version__
from tritonlite.capi._impl import (
    _IN_DTYPES,
    array_from_raw,
    decoupled_hint,
    encoded_outputs,
    error_code_and_message,
    parse_engine_options,
    parse_parameters,
    parse_version,
    submit_with_callback,
    version_number,
)
from tritonlite.engine import InferenceEngine
from tritonlite.errors import InvalidArgumentError, TritonLiteError, UnavailableError
from tritonlite.request import InferenceRequest, InferResult

_log = logging.getLogger("tritonlite.jvm")
_open_engines: "weakref.WeakSet[InferenceEngine]" = weakref.WeakSet()
_lock = threading.Lock()


class _J:
    """Java classes, resolved once the JVM runs (``jpype.JClass``: the repo's java/ folder shadows ``import java``)."""

    _done = False

    @classmethod
    def load(cls) -> type["_J"]:
        if not cls._done:
            cls.TritonLiteException = jpype.JClass("org.tritonlite.TritonLiteException")
            cls.InferResult = jpype.JClass("org.tritonlite.InferResult")
            cls.TritonLite = jpype.JClass("org.tritonlite.TritonLite")
            cls.ByteBuffer = jpype.JClass("java.nio.ByteBuffer")
            cls.StringArray = jpype.JArray(jpype.JString)
            cls.IntArray = jpype.JArray(jpype.JInt)
            cls.LongArray = jpype.JArray(jpype.JLong)
            cls.LongArray2 = jpype.JArray(jpype.JLong, 2)
            cls.BufferArray = jpype.JArray(cls.ByteBuffer)
            cls._done = True
        return cls


def _java_error(exc: BaseException) -> Exception:
    if isinstance(exc, jpype.JException):
        return exc  # already a Java exception (e.g. from Java code called back)
    code, message = error_code_and_message(exc)
    return _J.load().TritonLiteException(jpype.JInt(code), message)


def _translate(fn: Any) -> Any:
    """Run ``fn``; any Python exception is rethrown into Java as a TritonLiteException."""

    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except BaseException as exc:  # noqa: BLE001 - nothing may escape as a bare Python error
            raise _java_error(exc) from None

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def core_request(request: Any) -> InferenceRequest:
    """The core request of an ``org.tritonlite.InferRequest`` (one ``packed()`` call; input data viewed in place)."""
    p = request.packed()
    names, types, shapes, buffers = p[2], p[3], p[4], p[5]
    inputs: dict[str, np.ndarray] = {}
    for i in range(len(names)):
        name = str(names[i])
        inputs[name] = array_from_raw(name, int(types[i]), tuple(shapes[i]), memoryview(buffers[i]))
    outputs = p[6]
    params = p[12]
    return InferenceRequest(
        model_name=str(p[0]),
        inputs=inputs,
        requested_outputs=tuple(str(o) for o in outputs) if len(outputs) else None,
        model_version=parse_version(int(p[1])),
        id=str(p[7]),
        parameters=parse_parameters(str(params)) if params is not None else {},
        priority=int(p[10]),
        timeout_us=int(p[11]),
        correlation_id=int(p[8]),
        flags=int(p[9]),
    )


_U32 = struct.Struct("<I")
_STRUCTS: dict[Any, struct.Struct] = {}  # format -> compiled Struct (formats repeat: same model, same shapes)


def _struct(fmt: Any) -> struct.Struct:
    s = _STRUCTS.get(fmt)
    if s is None:
        if len(_STRUCTS) > 1024:
            _STRUCTS.clear()
        s = _STRUCTS[fmt] = struct.Struct(fmt)
    return s


def arena_request(arena: memoryview, length: int) -> InferenceRequest:
    """Decode a request Java wrote into an arena (layout: ``org.tritonlite.Arena``); inputs are copied out."""
    (flen,) = _U32.unpack_from(arena, 0)
    fmt = arena[4 : 4 + flen].tobytes()
    vals = _struct(fmt).unpack_from(arena, (4 + flen + 7) & ~7)
    n_out, n_in = vals[5], vals[6]
    pos = 10 + n_out
    inputs: dict[str, np.ndarray] = {}
    for _ in range(n_in):
        name, dtype, rank = vals[pos], vals[pos + 1], vals[pos + 2]
        shape = vals[pos + 3 : pos + 3 + rank]
        offset, nbytes = vals[pos + 3 + rank], vals[pos + 4 + rank]
        pos += rank + 5
        key = name.decode()
        npd = _IN_DTYPES[dtype] if 0 <= dtype < len(_IN_DTYPES) else None
        if npd is not None and nbytes == math.prod(shape) * npd.itemsize and nbytes:  # Java's Tensor checked the dims
            # a (writable) copy: the arena is reused by the next call, and a model may keep or change its inputs
            arr = np.frombuffer(bytearray(arena[offset : offset + nbytes]), npd)
            inputs[key] = arr if rank == 1 else arr.reshape(shape)
        else:  # BYTES (copied by deserialisation) or an error with its message
            arr = array_from_raw(key, dtype, tuple(shape), arena[offset : offset + nbytes])
            inputs[key] = arr if arr.dtype == object else arr.copy()
    params = vals[9]
    return InferenceRequest(
        model_name=vals[7].decode(),
        inputs=inputs,
        requested_outputs=tuple(o.decode() for o in vals[10 : 10 + n_out]) or None,
        model_version=vals[0] if vals[0] == -1 else parse_version(vals[0]),
        id=vals[8].decode(),
        parameters=parse_parameters(params.decode()) if params else {},
        priority=vals[3],
        timeout_us=vals[4],
        correlation_id=vals[1],
        flags=vals[2],
    )


_HEADERS: dict[tuple[Any, ...], tuple[bytes, tuple[tuple[int, int], ...], int]] = {}  # response layout cache


def arena_response(arena: memoryview, engine: InferenceEngine, result: InferResult) -> int:
    """Write ``result`` into the arena for Java (layout: ``org.tritonlite.Arena``); its length, or -1 if it does not fit.

    Without a request id the header depends only on the model and each output's name, type and shape, so it is
    packed once per such signature and reused (a serving loop's steady state: a dictionary lookup and the copies).
    """
    bufs = []
    sig: list[Any] = [result.model_name, result.model_version]
    for name, code, shape, buf in encoded_outputs(engine, result):
        sig.append((name, code, shape, len(buf) if isinstance(buf, bytes) else buf.nbytes))
        bufs.append(buf)
    key = tuple(sig)
    cached = None if result.id else _HEADERS.get(key)  # request ids are usually unique: not worth caching
    if cached is None:
        cached = _pack_header(result, key[2:])
        if not result.id:
            if len(_HEADERS) > 1024:
                _HEADERS.clear()
            _HEADERS[key] = cached
    header, spans, end = cached
    if end > len(arena):
        return -1
    arena[: len(header)] = header
    for (start, nbytes), buf in zip(spans, bufs):
        if nbytes:
            arena[start : start + nbytes] = buf if isinstance(buf, bytes) else memoryview(np.ascontiguousarray(buf)).cast("B")
    return end


def _pack_header(result: InferResult, outputs: tuple[Any, ...]) -> tuple[bytes, tuple[tuple[int, int], ...], int]:
    model = (result.model_name or "").encode()
    rid = result.id.encode() if result.id else b""
    version = result.model_version
    fmt = f"<iqi{len(model)}si{len(rid)}s"
    values: list[Any] = [len(outputs), version_number(version), len(model), model, len(rid), rid]
    slots = []
    for name, code, shape, nbytes in outputs:
        raw = name.encode()
        fmt += f"i{len(raw)}sii{len(shape)}qqq"
        values += (len(raw), raw, code, len(shape), *shape, 0, nbytes)
        slots.append(len(values) - 2)
    packer = struct.Struct(fmt)
    offset = (packer.size + 7) & ~7
    spans = []
    for slot in slots:
        values[slot] = offset
        spans.append((offset, values[slot + 1]))
        offset = (offset + values[slot + 1] + 7) & ~7
    return packer.pack(*values), tuple(spans), offset


def _direct_buffer(buf: Any) -> Any:
    if isinstance(buf, (bytes, bytearray)):
        buf = np.frombuffer(bytearray(buf), dtype=np.uint8)  # BYTES: the serialised copy is ours to hand over
    elif not (buf.flags.writeable and buf.flags.c_contiguous):
        buf = np.array(buf, copy=True, order="C")
    if buf.nbytes == 0:
        return _J.ByteBuffer.allocateDirect(0)
    return jpype.nio.convertToDirectBuffer(buf.reshape(-1).view(np.uint8))


def java_result(engine: InferenceEngine, result: InferResult) -> Any:
    """An ``org.tritonlite.InferResult`` over the outputs' memory."""
    J = _J.load()
    names, types, shapes, buffers = [], [], [], []
    for name, code, shape, buf in encoded_outputs(engine, result):
        names.append(name)
        types.append(code)
        shapes.append(J.LongArray(list(shape)))
        buffers.append(_direct_buffer(buf))
    version = version_number(result.model_version)
    return J.InferResult(
        result.model_name or "", jpype.JLong(version), result.id or "", J.StringArray(names), J.IntArray(types), J.LongArray2(shapes), J.BufferArray(buffers)
    )


@JImplements("org.tritonlite.EngineBackend", deferred=True)
class EngineBackend:
    """One Python ``InferenceEngine`` seen from Java."""

    def __init__(self, engine: InferenceEngine) -> None:
        self.engine = engine
        self.arenas: dict[int, memoryview] = {}
        self.pending: dict[int, InferResult] = {}

    @JOverride
    @_translate
    def isLive(self) -> bool:
        return self.engine.is_live()

    @JOverride
    @_translate
    def isReady(self) -> bool:
        return self.engine.is_ready()

    @JOverride
    @_translate
    def isModelReady(self, model: Any, version: Any) -> bool:
        return self.engine.is_model_ready(str(model), parse_version(int(version)))

    @JOverride
    @_translate
    def serverMetadata(self) -> str:
        import json

        return json.dumps(self.engine.server_metadata())

    @JOverride
    @_translate
    def modelMetadata(self, model: Any, version: Any) -> str:
        import json

        return json.dumps(self.engine.model_metadata(str(model), parse_version(int(version))))

    @JOverride
    @_translate
    def modelConfig(self, model: Any, version: Any) -> str:
        import json

        return json.dumps(self.engine.model_config(str(model), parse_version(int(version))))

    @JOverride
    @_translate
    def modelStatistics(self, model: Any, version: Any) -> str:
        import json

        return json.dumps(self.engine.model_statistics(str(model) if model is not None else "", parse_version(int(version))))

    @JOverride
    @_translate
    def repositoryIndex(self, ready_only: Any) -> str:
        import json

        return json.dumps(self.engine.repository_index(ready=bool(ready_only)))

    @JOverride
    @_translate
    def loadModel(self, model: Any, config_json: Any) -> None:
        self.engine.load_model(str(model), config=None if config_json is None else str(config_json))

    @JOverride
    @_translate
    def unloadModel(self, model: Any) -> None:
        self.engine.unload_model(str(model))

    @JOverride
    @_translate
    def infer(self, request: Any) -> Any:
        if request is None:
            raise ValueError("request must not be null")
        core = core_request(request)
        try:
            result = self.engine._submit_request(core, inline=True).result()
        except TritonLiteError as exc:
            raise decoupled_hint(exc, "InferenceEngine.stream / inferAsync") from None
        return java_result(self.engine, result)

    @JOverride
    @_translate
    def arena(self, arena_id: Any, capacity: Any) -> Any:
        arena = np.zeros(int(capacity), np.uint8)
        self.arenas[int(arena_id)] = memoryview(arena)  # keeps the array alive on this side
        return jpype.nio.convertToDirectBuffer(arena)  # and JPype keeps it alive while Java holds the buffer

    @JOverride
    @_translate
    def inferInArena(self, arena_id: int, length: int) -> int:
        arena = self.arenas.get(arena_id)
        if arena is None:
            raise UnavailableError(f"unknown arena {arena_id}")
        core = arena_request(arena, length)
        try:
            result = self.engine._submit_request(core, inline=True).result()
        except TritonLiteError as exc:
            raise decoupled_hint(exc, "InferenceEngine.stream / inferAsync") from None
        n = arena_response(arena, self.engine, result)
        if n < 0:
            self.pending[arena_id] = result
        return n

    @JOverride
    @_translate
    def takeResult(self, arena_id: Any) -> Any:
        result = self.pending.pop(int(arena_id), None)
        if result is None:
            raise InvalidArgumentError(f"no pending result for arena {int(arena_id)}")
        return java_result(self.engine, result)

    @JOverride
    @_translate
    def releaseArena(self, arena_id: Any) -> None:
        self.arenas.pop(int(arena_id), None)
        self.pending.pop(int(arena_id), None)

    @JOverride
    @_translate
    def inferAsync(self, request: Any, listener: Any) -> None:
        if request is None or listener is None:
            raise ValueError("request and listener must not be null")
        core = core_request(request)
        engine = self.engine

        def on_response(result: InferResult | None, error: BaseException | None, final: bool) -> None:
            jresult, jerror = None, None
            try:
                if error is not None:
                    jerror = _java_error(error)
                elif result is not None:
                    jresult = java_result(engine, result)
            except BaseException as exc:  # noqa: BLE001 - the listener must still hear about it
                jerror = _java_error(exc)
            try:
                listener.onResponse(jresult, jerror, bool(final))
            except BaseException:  # noqa: BLE001 - a throwing listener must not break an engine thread
                _log.exception("an org.tritonlite.ResponseListener threw")

        submit_with_callback(engine, core, on_response)

    @JOverride
    @_translate
    def close(self) -> None:
        _open_engines.discard(self.engine)
        self.arenas.clear()
        self.pending.clear()
        self.engine.close()


@JImplements("org.tritonlite.EngineProvider", deferred=True)
class EngineProvider:
    """Opens Python engines for ``InferenceEngine.open``."""

    @JOverride
    @_translate
    def open(self, repository: Any, options_json: Any) -> Any:
        if repository is None:
            raise ValueError("modelRepository must not be null")
        opts = parse_engine_options(None if options_json is None else str(options_json))
        engine = InferenceEngine(str(repository), **opts)
        _open_engines.add(engine)
        return EngineBackend(engine)


def _close_open_engines() -> None:
    """At exit, close engines Java code left open (their threads must stop before the JVM shuts down)."""
    for engine in list(_open_engines):
        try:
            engine.close()
        except Exception:  # noqa: BLE001
            _log.exception("closing an engine at exit failed")


_registered = False


def register() -> None:
    """Install the Python engine as ``org.tritonlite.TritonLite``'s provider (the JVM must be running)."""
    global _registered
    with _lock:
        _J.load().TritonLite.register(EngineProvider(), __version__)
        if not _registered:
            atexit.register(_close_open_engines)  # runs before JPype's own JVM shutdown (registered earlier)
            _registered = True


__all__ = ["EngineBackend", "EngineProvider", "register", "core_request", "java_result"]
