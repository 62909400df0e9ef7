"""Infer request/response bodies of the KServe v2 HTTP protocol and Triton's binary tensor extension.

``decode_infer`` turns a body (already decompressed) into an :class:`InferenceRequest` plus what the
response encoder needs to know about each requested output; ``encode_infer`` writes the JSON header
and the appended binary outputs. Compression helpers follow Triton's ``DecompressBuffer`` /
``CompressionTypeUsed`` (SPEC §2.1). Messages follow Triton's wording.

JSON is parsed and printed with orjson: tensor ``data`` lists become arrays in one numpy call and
output arrays are printed by orjson straight from numpy (``OPT_SERIALIZE_NUMPY``), so 4096 floats
cost microseconds, not the milliseconds of per-float Python objects through the ``json`` module.
"""

from __future__ import annotations

import json
import sys
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tritonlite.datatypes import DataType
from tritonlite.engine import parse_version
from tritonlite.errors import InvalidArgumentError, UnsupportedError
from tritonlite.protocol.models import ModelInfo, prepare_output
from tritonlite.protocol.params import request_options
from tritonlite.protocol.shm import SHM_DISABLED, SharedMemoryRegistry, ShmTarget, input_from_params, shm_target
from tritonlite.protocol.tensors import element_count, from_raw, to_raw
from tritonlite.request import CXX_INTEGER_PREFIX, InferenceRequest, InferResult

try:
    import orjson
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the HTTP server needs orjson: pip install 'tritonlite[http]'") from exc

try:  # Triton's own parser (RapidJSON): NaN/Infinity and its error texts, on orjson's failures only
    import rapidjson
except ImportError:  # pragma: no cover - tritonclient depends on it; without it, orjson's texts
    rapidjson = None

_LITTLE = sys.byteorder == "little"
IHCL = "inference-header-content-length"
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
MAX_JSON_DEPTH = 100

_INT_TYPES = frozenset({"INT8", "INT16", "INT32", "INT64"})
_UINT_TYPES = frozenset({"UINT8", "UINT16", "UINT32", "UINT64"})
_FLOAT_TYPES = frozenset({"FP32", "FP64"})


def json_parse_error(message: str) -> InvalidArgumentError:
    """A JSON-level error of the HTTP frontend, in Triton's words. Triton's TritonJson makes these
    INTERNAL (500); tritonlite answers 400 (SPEC §1.6 allows it): bad input is the client's error, and
    the hardening suite holds the server to no 5xx on malformed requests."""
    return InvalidArgumentError(message)


def _too_large(what: str, size: int, limit: int) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{what} size of {size} bytes exceeds the maximum allowed value of {limit} bytes. "
        "Use --http-max-input-size to increase the limit."
    )


# ---- compression ---------------------------------------------------------------------------------------
def decompress(body: bytearray, encoding: str | None, limit: int) -> bytearray:
    """Undo ``Content-Encoding`` (gzip, deflate = zlib format, identity); output capped at ``limit``."""
    enc = (encoding or "").strip()  # Triton compares the names case-sensitively
    if enc in ("", "identity"):
        return body
    if enc == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    elif enc == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise UnsupportedError("Unsupported compression type")
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
        if len(out) > limit or d.unconsumed_tail:
            raise _too_large("Decompressed request body", max(len(out), limit + 1), limit)
        out += d.flush()
    except zlib.error as exc:
        raise InvalidArgumentError(f"failed to decompress the request body ({enc}): {exc}") from None
    if not d.eof:
        raise InvalidArgumentError(f"failed to decompress the request body ({enc}): truncated data")
    return bytearray(out)


def response_encoding(accept: str | None) -> str | None:
    """The encoding to use for a response: the highest-q of identity/gzip/deflate, first on ties."""
    if not accept:
        return None
    best, best_q = None, -1.0
    for item in accept.split(","):
        parts = [p.strip() for p in item.split(";")]
        name = parts[0]  # case-sensitive, as Triton
        if name not in ("identity", "gzip", "deflate"):
            continue
        q = 1.0
        for p in parts[1:]:
            if p.lower().startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = name, q
    if best in (None, "identity") or best_q <= 0:
        return None
    return best


def compress(parts: list[Any], encoding: str) -> bytes:
    data = b"".join(bytes(p) if isinstance(p, memoryview) else p for p in parts)
    if encoding == "gzip":
        c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return c.compress(data) + c.flush()
    return zlib.compress(data)


# ---- JSON tensor data ----------------------------------------------------------------------------------
def _flatten(data: Any, out: list[Any], depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise InvalidArgumentError(f"Unable to parse 'data': JSON nesting deeper than {MAX_JSON_DEPTH}")
    for item in data:
        if isinstance(item, list):
            _flatten(item, out, depth + 1)
        else:
            out.append(item)


#: Triton's TritonJson text for a ``data`` element of the wrong JSON type, per datatype family
_WRONG_ELEMENT = {
    "BOOL": "attempt to access JSON non-boolean as boolean",
    **{t: "attempt to access JSON non-signed-integer as signed-integer" for t in _INT_TYPES},
    **{t: "attempt to access JSON non-unsigned-integer as unsigned-integer" for t in _UINT_TYPES},
    **{t: "attempt to access JSON non-number as double" for t in _FLOAT_TYPES},
}


def _json_to_array(data: Any, datatype: str, shape: list[int], name: str, model: str = "", req_id: str = "") -> np.ndarray:
    if datatype in ("FP16", "BF16"):
        raise InvalidArgumentError(
            f"receiving {datatype} data via JSON is not supported. Please use the binary data format for input {name}"
        )
    if not isinstance(data, list):
        raise json_parse_error("Unable to parse 'data': attempt to access JSON non-array as array")
    count = element_count(shape)
    if datatype == "BYTES":
        flat: list[Any] = []
        _flatten(data, flat, 1)
        out = np.empty(len(flat), dtype=np.object_)
        for i, v in enumerate(flat):
            if not isinstance(v, str):
                raise json_parse_error("Unable to parse JSON bytes array: attempt to access JSON non-string as string")
            out[i] = v.encode("utf-8")
        if len(flat) != count:  # Triton's core counts the serialized strings
            raise InvalidArgumentError(
                f"[request id: {req_id or '<id_unknown>'}] expected {count} string elements for inference input "
                f"'{name}' for model '{model}', got {len(flat)}"
            )
        return out.reshape(shape)
    dtype = DataType.from_protocol(datatype).numpy_dtype
    arr: np.ndarray | None = None
    try:  # fast path: numpy reads flat and regularly nested lists alike
        arr = np.array(data)
        if arr.dtype.kind == "O":
            arr = None
    except (ValueError, OverflowError, TypeError):
        arr = None
    if arr is None:  # ragged, deep or mixed: walk it (bounded depth) and let numpy judge the elements
        flat = []
        _flatten(data, flat, 1)
        try:
            arr = np.array(flat)
        except (ValueError, OverflowError):
            arr = np.array(flat, dtype=object)
    kind = arr.dtype.kind
    if arr.size == 0:
        ok = True
    elif datatype == "BOOL":
        ok = kind == "b"
    elif datatype in _INT_TYPES:
        ok = kind in ("i", "u") or (kind == "O" and all(type(v) is int for v in arr.reshape(-1)))
    elif datatype in _UINT_TYPES:
        ok = (kind == "u" or (kind == "i" and not (arr < 0).any())
              or (kind == "O" and all(type(v) is int and v >= 0 for v in arr.reshape(-1))))
    else:
        ok = kind in ("i", "u", "f") or (kind == "O" and all(type(v) in (int, float) for v in arr.reshape(-1)))
    if not ok:
        raise json_parse_error(f"Unable to parse 'data': {_WRONG_ELEMENT.get(datatype, 'attempt to access JSON value of the wrong type')}")
    if arr.size != count:
        raise json_parse_error("Unable to parse 'data': Shape does not match true shape of 'data' field")
    if count == 0:
        return np.empty(shape, dtype=dtype)
    try:
        return arr.astype(dtype, casting="unsafe").reshape(shape)
    except (OverflowError, ValueError) as exc:
        raise InvalidArgumentError(f"Unable to parse 'data' for input '{name}': {exc}") from None


def _array_to_json(arr: np.ndarray, datatype: str, name: str) -> Any:
    """The ``data`` of one JSON output: a flat numpy array orjson prints itself, or a list (BYTES)."""
    if datatype in ("FP16", "BF16"):  # Triton 2.51's text, without the output's name
        raise InvalidArgumentError(f"sending {datatype} data via JSON is not supported. Please use the binary data format for output")
    flat = arr.reshape(-1)
    if datatype == "BYTES" or flat.dtype.kind not in _NUMPY_JSON_KINDS:
        return [v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v) for v in flat]
    if not flat.dtype.isnative:
        flat = flat.astype(flat.dtype.newbyteorder("="))
    if flat.dtype == np.float16:
        flat = flat.astype(np.float32)
    return np.ascontiguousarray(flat)


#: numpy kinds orjson prints from the array itself (bool, signed, unsigned, float)
_NUMPY_JSON_KINDS = frozenset("biuf")
_ORJSON_OPTS = orjson.OPT_SERIALIZE_NUMPY


def _dump_json(doc: dict[str, Any], arrays: list[np.ndarray]) -> bytes:
    """orjson with numpy arrays; NaN/Inf in a float output fall back to ``json`` (which prints them
    as ``NaN``/``Infinity``, as before; orjson would print null)."""
    for a in arrays:
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            return _ENCODER.encode(_lists(doc)).encode("utf-8")
    return orjson.dumps(doc, option=_ORJSON_OPTS)


def _lists(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["outputs"] = [dict(e, data=e["data"].tolist()) if isinstance(e.get("data"), np.ndarray) else e for e in doc["outputs"]]
    return out


# ---- requests ------------------------------------------------------------------------------------------
@dataclass
class OutputSpec:
    name: str
    binary: bool = False
    class_count: int = 0
    shm: ShmTarget | None = None


@dataclass
class DecodedInfer:
    request: InferenceRequest
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    binary_default: bool = False


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise json_parse_error(f"Unable to parse '{what}': attempt to get members for non-object")
    return value


def _member(obj: Any, key: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise json_parse_error(f"Unable to parse '{key}': attempt to access non-existing object member '{key}'")
    return obj[key]


def _get_str(obj: dict[str, Any], key: str) -> str:
    value = _member(obj, key)
    if not isinstance(value, str):
        raise json_parse_error(f"Unable to parse '{key}': attempt to access JSON non-string as string")
    return value


def _get_shape(obj: dict[str, Any]) -> list[int]:
    shape = _member(obj, "shape")
    if not isinstance(shape, list):
        raise json_parse_error("Unable to parse 'shape': attempt to access JSON non-array as array")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise json_parse_error("Unable to parse 'shape': attempt to access JSON non-unsigned-integer as unsigned-integer")
    return shape


def _uint(value: Any, key: str, verb: str = "parse") -> int:
    if type(value) is not int or value < 0:
        raise json_parse_error(f"Unable to {verb} '{key}': attempt to access JSON non-unsigned-integer as unsigned-integer")
    return value


def parse_json(buffer: Any) -> Any:
    """Parse a request JSON body (bytes, bytearray or memoryview) as Triton does.

    orjson first; where it fails, RapidJSON (Triton's parser) decides: it accepts ``NaN`` and
    ``Infinity`` (which orjson refuses) and words the error as Triton does
    (``... : Missing a name for object member. at 1``, INTERNAL → 500).
    """
    try:
        return orjson.loads(buffer)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
    if rapidjson is not None:
        try:
            return rapidjson.loads(bytes(buffer))
        except rapidjson.JSONDecodeError as exc:
            text = str(exc)
            head, sep, tail = text.partition(": ")
            if sep and head.startswith("Parse error at offset "):
                message = f"{tail} at {head.removeprefix('Parse error at offset ')}"
        except (ValueError, RecursionError):
            pass
    raise json_parse_error(f"failed to parse the request JSON buffer: {message}")


def decode_infer(
    body: bytearray,
    ihcl_header: str | None,
    model_name: str,
    version: str,
    info: ModelInfo,
    registry: SharedMemoryRegistry | None,
    limit: int,
) -> DecodedInfer:
    """Build the core request of one ``/infer`` call (body already decompressed)."""
    total = len(body)
    if ihcl_header is not None:
        header_len = _atoi(ihcl_header)  # Triton reads the header with atoi: "abc" is 0, a raw body
        if header_len < 0 or header_len > total:
            raise HeaderSizeError(f"inference header size should be in range (0, {total}), got: {header_len}")
    else:
        header_len = total
    if header_len == 0:  # IHCL 0, or an empty body: the body is the model's single input
        return _decode_raw(body, model_name, version, info)
    if header_len > limit:
        raise _too_large("Request JSON", header_len, limit)
    view = memoryview(body)
    key: bytes | None = None
    if ihcl_header is not None and header_len <= _PLAN_MAX_HEADER:
        key = bytes(view[:header_len])
        plan = info.decode_cache.get(key)
        if plan is not None and plan.total == total:
            return plan.decode(body, model_name, version)
    json_part = view[:header_len]
    if ihcl_header is None:  # Triton reads a header-less body as a C string: up to a NUL
        nul = body.find(b"\0", 0, header_len)
        if nul >= 0:
            json_part = view[:nul]
    doc = parse_json(json_part)
    req_id = doc.get("id", "") if isinstance(doc, dict) else ""
    if not isinstance(req_id, str):
        raise json_parse_error("Unable to parse 'id': attempt to access JSON non-string as string")
    params = doc.get("parameters") if isinstance(doc, dict) else None
    if params is not None and not isinstance(params, dict):
        raise json_parse_error("failed to get request params.: attempt to get members for non-object")
    params = params or {}
    binary_default = params.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise json_parse_error("Unable to parse 'binary_data_output': attempt to access JSON non-boolean as boolean")
    _check_params(params)
    opts = request_options(params)

    raw_inputs = _member(doc, "inputs")
    if not isinstance(raw_inputs, list):
        raise json_parse_error("Unable to parse 'inputs': attempt to access JSON non-array as array")
    inputs: dict[str, np.ndarray] = {}
    #: binary inputs, converted once the whole body is known to be framed right (Triton checks that first)
    binary: list[tuple[str, str, list[int], int, int]] = []
    offset = header_len
    #: (name, dtype, count, shape, offset) of each input while all are fixed-size binary ones
    planned: list[tuple[str, np.dtype, int, tuple[int, ...], int]] | None = [] if key is not None and _LITTLE else None
    for item in raw_inputs:
        tparams = item.get("parameters") if isinstance(item, dict) else None
        tparams = {} if tparams is None else _obj(tparams, "parameters")
        has_data = isinstance(item, dict) and item.get("data") is not None
        has_bin = "binary_data_size" in tparams
        target = shm_target(tparams)
        if has_data + has_bin + (target is not None) != 1:
            found = [k for k, v in (("'data'", has_data), ("'binary_data_size'", has_bin), ("'shared_memory_region'", target is not None)) if v]
            raise InvalidArgumentError(
                "Input must set only one of the following fields: 'data', 'binary_data_size' in 'parameters', "
                f"'shared_memory_region' in 'parameters'. But {'set ' + ' '.join(found) if found else 'no field is set'}"
            )
        name = _get_str(item, "name")
        datatype = _get_str(item, "datatype")
        try:
            DataType.from_protocol(datatype)
        except InvalidArgumentError:
            raise InvalidArgumentError(f"invalid datatype for input {name}") from None
        shape = _get_shape(item)
        if has_bin:
            size = _uint(tparams["binary_data_size"], "binary_data_size")
            if offset + size > total:
                raise InvalidArgumentError(
                    f"unexpected size for input '{name}', expecting {offset + size - total} additional bytes for model '{model_name}'"
                )
            binary.append((name, datatype, shape, offset, size))
            offset += size
        elif target is not None:
            planned = None
            if registry is None:
                raise InvalidArgumentError(SHM_DISABLED)
            inputs[name] = input_from_params(registry, target, datatype, shape, name=name, model=model_name)
        else:
            planned = None
            arr = _json_to_array(item["data"], datatype, shape, name, model_name, req_id)
            if arr.dtype != np.object_ and arr.nbytes > limit:
                raise _too_large(f"Input '{name}'", arr.nbytes, limit)
            inputs[name] = arr
    if offset != total:
        raise InvalidArgumentError(f"unexpected additional input data for model '{model_name}'")
    for name, datatype, shape, start, size in binary:
        arr = inputs[name] = from_raw(datatype, shape, view[start : start + size], name=name, model=model_name)
        if planned is not None:
            if datatype == "BYTES" or arr.size == 0:
                planned = None
            else:
                planned.append((name, arr.dtype, arr.size, arr.shape, start))

    outputs: dict[str, OutputSpec] = {}
    raw_outputs = doc.get("outputs")
    if raw_outputs is not None:
        if not isinstance(raw_outputs, list):
            raise json_parse_error("Unable to parse 'outputs': attempt to access JSON non-array as array")
        for item in raw_outputs:
            item = _obj(item, "outputs")
            name = _get_str(item, "name")
            oparams = item.get("parameters")
            oparams = {} if oparams is None else _obj(oparams, "parameters")
            as_binary = oparams.get("binary_data", False)
            if not isinstance(as_binary, bool):
                raise json_parse_error("Unable to parse 'binary_data': attempt to access JSON non-boolean as boolean")
            class_count = _uint(oparams.get("classification", 0), "classification", "set")
            target = shm_target(oparams)
            if target is not None and as_binary:
                raise InvalidArgumentError(f"Output can't set both 'shared_memory_region' and 'binary_data' for output '{name}'")
            if target is not None and class_count:
                raise InvalidArgumentError(f"Output can't set both 'shared_memory_region' and 'classification' for output '{name}'")
            if target is not None and registry is None:
                raise InvalidArgumentError(SHM_DISABLED)
            if target is not None:
                planned = None
            outputs[name] = OutputSpec(name, as_binary, class_count, target)

    if planned is not None and key is not None:
        cache = info.decode_cache
        if len(cache) >= _PLAN_CACHE_SIZE:
            cache.clear()
        cache[key] = _BinaryPlan(total, tuple(planned), outputs, binary_default, req_id, opts)
    request = InferenceRequest(
        model_name=model_name,
        inputs=inputs,
        requested_outputs=tuple(outputs) if outputs else None,
        model_version=parse_version(version),
        id=req_id,
        parameters=opts["parameters"],
        priority=opts["priority"],
        timeout_us=opts["timeout_us"],
        correlation_id=opts["correlation_id"],
        flags=opts["flags"],
    )
    return DecodedInfer(request, outputs, binary_default)


class HeaderSizeError(InvalidArgumentError):
    """An ``Inference-Header-Content-Length`` outside the body (Triton answers it before reading the JSON)."""


def _atoi(text: str) -> int:
    """C's ``atoi``: optional blanks and sign, then the leading digits (none: 0)."""
    match = CXX_INTEGER_PREFIX.match(text)
    return int(match.group(1)) if match else 0


#: Triton's HTTP frontend reads these request parameters with typed TritonJson getters (INTERNAL on a
#: wrong type); every other parameter must be a string, integer, boolean or number (INVALID_ARG)
_TYPED_PARAMS = {
    "sequence_start": (lambda v: isinstance(v, bool), "attempt to access JSON non-boolean as boolean"),
    "sequence_end": (lambda v: isinstance(v, bool), "attempt to access JSON non-boolean as boolean"),
    "priority": (lambda v: type(v) is int and v >= 0, "attempt to access JSON non-unsigned-integer as unsigned-integer"),
    "timeout": (lambda v: type(v) is int and v >= 0, "attempt to access JSON non-unsigned-integer as unsigned-integer"),
    "sequence_id": (lambda v: isinstance(v, str) or (type(v) is int and v >= 0), "attempt to access JSON non-string as string"),
}


def _check_params(params: dict[str, Any]) -> None:
    for key, value in params.items():
        typed = _TYPED_PARAMS.get(key)
        if typed is not None:
            if not typed[0](value):
                raise json_parse_error(f"Unable to parse '{key}': {typed[1]}")
        elif key == "binary_data_output":
            continue
        elif key.startswith("triton_"):
            raise InvalidArgumentError("parameter keys starting with 'triton_' are reserved for Triton usage and should not be specified.")
        elif value is None or not isinstance(value, (str, int, float, bool)):
            raise InvalidArgumentError(f"parameter '{key}' has invalid type. It should be either 'int', 'bool', or 'string'.")


_PLAN_MAX_HEADER = 4096
_PLAN_CACHE_SIZE = 64


class _BinaryPlan:
    """What a binary request's JSON header decoded to, kept per model version keyed by the header's
    bytes: a client sending the same header again (tritonclient does, for same-shaped requests) is
    decoded by slicing its body, without parsing or re-checking the header. Only headers whose inputs
    are all fixed-size binary tensors (no ``data``, no shared memory) are kept."""

    __slots__ = ("total", "inputs", "outputs", "binary_default", "req_id", "opts")

    def __init__(self, total: int, inputs: tuple[tuple[str, np.dtype, int, tuple[int, ...], int], ...],
                 outputs: dict[str, OutputSpec], binary_default: bool, req_id: str, opts: dict[str, Any]) -> None:
        self.total = total
        self.inputs = inputs
        self.outputs = outputs
        self.binary_default = binary_default
        self.req_id = req_id
        self.opts = opts

    def decode(self, body: bytearray, model_name: str, version: str) -> DecodedInfer:
        inputs = {name: np.frombuffer(body, dtype, count, offset).reshape(shape) for name, dtype, count, shape, offset in self.inputs}
        opts = self.opts
        outputs = self.outputs
        request = InferenceRequest(
            model_name=model_name,
            inputs=inputs,
            requested_outputs=tuple(outputs) if outputs else None,
            model_version=parse_version(version),
            id=self.req_id,
            parameters=dict(opts["parameters"]),
            priority=opts["priority"],
            timeout_us=opts["timeout_us"],
            correlation_id=opts["correlation_id"],
            flags=opts["flags"],
        )
        return DecodedInfer(request, outputs, self.binary_default)


def _decode_raw(body: bytearray, model_name: str, version: str, info: ModelInfo) -> DecodedInfer:
    """``Inference-Header-Content-Length: 0`` (or an empty body): the whole body is the model's single input."""
    if len(info.inputs) != 1:
        raise InvalidArgumentError(
            f"[request id: <id_unknown>] Raw request must only have 1 input (found 1) to be deduced but got "
            f"{len(info.inputs)} inputs in '{model_name}' model configuration"
        )
    (name, (datatype, dims)), = info.inputs.items()
    batch = [1] if info.batching else []
    if datatype == "BYTES":
        if list(dims) != [1]:
            raise InvalidArgumentError(
                f"[request id: <id_unknown>] For BYTE datatype raw input '{name}', the model must have input shape [1]"
            )
        shape = batch + [1]
        arr = from_raw(datatype, shape, memoryview(body), name=name, model=model_name)
    else:
        itemsize = DataType.from_protocol(datatype).itemsize
        variable = [i for i, d in enumerate(dims) if d < 0]
        if len(variable) > 1:
            raise InvalidArgumentError(
                f"Raw request for input '{name}' of model '{model_name}' can have at most one variable-size dimension"
            )
        fixed = element_count([d for d in dims if d >= 0]) * itemsize
        shape_dims = list(dims)
        if variable:
            if fixed == 0 or len(body) % fixed:
                raise InvalidArgumentError(
                    f"input byte size {len(body)} for input '{name}' of model '{model_name}' is not a multiple of {fixed}"
                )
            shape_dims[variable[0]] = len(body) // fixed
        arr = from_raw(datatype, batch + shape_dims, memoryview(body), name=name, model=model_name)
    request = InferenceRequest(model_name=model_name, inputs={name: arr}, model_version=parse_version(version))
    return DecodedInfer(request, {}, True)


# ---- responses -----------------------------------------------------------------------------------------
def encode_infer(
    result: InferResult,
    decoded: DecodedInfer,
    info: ModelInfo,
    registry: SharedMemoryRegistry | None,
) -> tuple[list[Any], int | None]:
    """Response body parts and the JSON header length (None when no output is binary)."""
    out_json: list[dict[str, Any]] = []
    blobs: list[Any] = []
    arrays: list[np.ndarray] = []
    specs = decoded.outputs
    for name, array in result.outputs.items():
        spec = specs.get(name)
        if spec is None:
            if specs:  # not requested (engine filters, but be strict)
                continue
            spec = OutputSpec(name, decoded.binary_default)
        datatype, shape, arr = prepare_output(info, name, array, class_count=spec.class_count, shm=spec.shm, registry=registry)
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        if arr is not None:
            if spec.binary:
                raw = to_raw(arr)
                entry["parameters"] = {"binary_data_size": len(raw)}
                if len(raw):
                    blobs.append(raw)
            else:
                data = entry["data"] = _array_to_json(arr, datatype, name)
                if isinstance(data, np.ndarray):
                    arrays.append(data)
        out_json.append(entry)
    doc: dict[str, Any] = {}
    if result.id:
        doc["id"] = result.id
    doc["model_name"] = result.model_name or decoded.request.model_name
    doc["model_version"] = str(result.model_version or info.version)
    if result.parameters:
        doc["parameters"] = jsonable_params(result.parameters)
    doc["outputs"] = out_json
    header = _dump_json(doc, arrays)
    has_binary = any(("parameters" in e and "binary_data_size" in e["parameters"]) for e in out_json)
    return [header, *blobs], (len(header) if has_binary else None)


def jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, (bool, int, float, str)) or v is None:
            out[k] = v
        elif isinstance(v, np.generic):
            out[k] = v.item()
        elif isinstance(v, (bytes, bytearray)):
            out[k] = bytes(v).decode("utf-8", "replace")
        else:
            out[k] = str(v)
    return out


__all__ = ["decode_infer", "encode_infer", "decompress", "compress", "response_encoding", "parse_json", "json_parse_error", "HeaderSizeError", "IHCL"]
