"""``ModelInferRequest`` → core :class:`~tritonlite.request.InferenceRequest`, and core results →
``ModelInferResponse`` (SPEC §3.2, the rules of Triton's ``infer_handler.cc``).

Inputs take their data, in this order, from a shared memory region, typed ``contents``, or the next
unused ``raw_input_contents`` entry. Responses always carry data in ``raw_output_contents``, one entry
per ``outputs[i]`` (empty for shared-memory outputs), which is what ``tritonclient`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tritonlite.datatypes import DataType, serialize_bytes_tensor
from tritonlite.engine import parse_version
from tritonlite.errors import InvalidArgumentError, TritonLiteError, UnsupportedError
from tritonlite.protocol.models import ModelInfo, prepare_output
from tritonlite.protocol.params import request_options
from tritonlite.protocol.shm import SHM_DISABLED, SharedMemoryRegistry, ShmTarget, input_from_params
from tritonlite.protocol.tensors import check_shape, datatype_of, element_count, from_raw
from tritonlite.protos import grpc_service_pb2 as pb
from tritonlite.request import InferenceRequest, InferResult
from tritonlite.validation import DeferredInputError

#: the only ``triton_*`` request parameter a client may send (ModelStreamInfer only uses it)
EMPTY_FINAL_KEY = "triton_enable_empty_final_response"
FINAL_KEY = "triton_final_response"
_ALLOWED_TRITON_KEYS = frozenset({EMPTY_FINAL_KEY})

#: typed ``InferTensorContents`` fields: (field, protocol types it may carry, name in messages, numpy dtype)
_CONTENTS: tuple[tuple[str, frozenset[str], str, Any], ...] = (
    ("bool_contents", frozenset({"BOOL"}), "BOOL", np.bool_),
    ("int_contents", frozenset({"INT8", "INT16", "INT32"}), "INT32", np.int32),
    ("int64_contents", frozenset({"INT64"}), "INT64", np.int64),
    ("uint_contents", frozenset({"UINT8", "UINT16", "UINT32"}), "UINT32", np.uint32),
    ("uint64_contents", frozenset({"UINT64"}), "UINT64", np.uint64),
    ("fp32_contents", frozenset({"FP32"}), "FP32", np.float32),
    ("fp64_contents", frozenset({"FP64"}), "FP64", np.float64),
    ("bytes_contents", frozenset({"BYTES"}), "BYTES", None),
)


def param_value(p: Any) -> Any:
    """The Python value of an ``InferParameter`` / ``ModelRepositoryParameter`` (None when unset)."""
    which = p.WhichOneof("parameter_choice")
    return None if which is None else getattr(p, which)


@dataclass(eq=False)
class OutputSpec:
    """A requested output that needs work beyond raw bytes: classification or a shm region."""

    class_count: int = 0
    shm: ShmTarget | None = None


@dataclass(eq=False)
class DecodedRequest:
    request: InferenceRequest
    #: requested version string, echoed in stream error responses
    version_text: str = ""
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    enable_empty_final: bool = False
    #: the request options parsed from ``parameters`` (None: none given); kept for decode plans
    options: dict[str, Any] | None = None


class Malformed:
    """What the request deserializer returns for bytes that are not the expected message."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


# ---- request ----------------------------------------------------------------------------------------
def _check_kind(key: str, value: pb.InferParameter, allowed: tuple[str, ...]) -> Any:
    which = value.WhichOneof("parameter_choice")
    if which not in allowed:
        expected = " or ".join(allowed)
        raise InvalidArgumentError(f"invalid value type for '{key}' parameter, expected {expected}.")
    return getattr(value, which)


def _request_parameters(params: Any) -> tuple[dict[str, Any], bool]:
    """Triton's typed checks on request parameters, then the shared option split."""
    values: dict[str, Any] = {}
    empty_final = False
    for key, value in params.items():
        if key == "sequence_id":
            v = _check_kind(key, value, ("int64_param", "string_param"))
            # Triton stores the int64 as its uint64 correlation id: -1 is 2**64 - 1
            values[key] = v & 0xFFFFFFFFFFFFFFFF if isinstance(v, int) else v
        elif key in ("sequence_start", "sequence_end"):
            values[key] = _check_kind(key, value, ("bool_param",))
        elif key == "priority":
            v = _check_kind(key, value, ("int64_param", "uint64_param"))
            if v < 0:
                raise InvalidArgumentError("invalid value for 'priority', expected value >= 0.")
            values[key] = v
        elif key == "timeout":
            v = _check_kind(key, value, ("int64_param",))
            if v < 0:
                raise InvalidArgumentError("invalid value for 'timeout', expected value >= 0.")
            values[key] = v
        elif key.startswith("triton_"):
            if key not in _ALLOWED_TRITON_KEYS:
                raise InvalidArgumentError(
                    "parameter keys starting with 'triton_' are reserved for Triton usage. Only the following keys "
                    "starting with 'triton_' are allowed: " + " ".join(sorted(_ALLOWED_TRITON_KEYS))
                )
            empty_final = bool(_check_kind(key, value, ("bool_param",)))
        else:
            values[key] = _check_kind(key, value, ("int64_param", "bool_param", "string_param", "double_param"))
    return request_options(values, allowed_triton_keys=_ALLOWED_TRITON_KEYS), empty_final


def _shm_params(tensor: Any) -> ShmTarget | None:
    """``shared_memory_region`` / ``_byte_size`` / ``_offset`` of a tensor, with Triton's gRPC checks."""
    params = tensor.parameters
    region_p = params.get("shared_memory_region")
    has_region = region_p is not None
    if has_region and region_p.WhichOneof("parameter_choice") != "string_param":
        raise InvalidArgumentError(
            f"invalid value type for 'shared_memory_region' parameter for tensor '{tensor.name}', expected string_param."
        )
    offset = 0
    byte_size = 0
    for key in ("shared_memory_offset", "shared_memory_byte_size"):
        p = params.get(key)
        if p is None:
            continue
        if not has_region:
            raise InvalidArgumentError(
                f"'{key}' can not be specified without 'shared_memory_region' parameter for tensor '{tensor.name}'"
            )
        if p.WhichOneof("parameter_choice") not in ("int64_param", "uint64_param"):
            raise InvalidArgumentError(
                f"invalid value type for '{key}' parameter for tensor '{tensor.name}', expected int64_param."
            )
        v = param_value(p)
        if v < 0:
            raise InvalidArgumentError(f"invalid value for '{key}' parameter for tensor '{tensor.name}', expected >= 0.")
        if key == "shared_memory_offset":
            offset = v
        else:
            byte_size = v
    if not has_region:
        return None
    if "shared_memory_byte_size" not in params:
        raise InvalidArgumentError(
            f"'shared_memory_byte_size' must be specified along with 'shared_memory_region' parameter for tensor "
            f"'{tensor.name}'"
        )
    return ShmTarget(region_p.string_param, byte_size, offset)


def _typed_contents(tensor: Any, model: str) -> np.ndarray:
    """An input from typed ``contents``: exactly one field, of the kind the datatype uses."""
    contents = tensor.contents
    name, datatype = tensor.name, tensor.datatype
    found: tuple[str, str, Any] | None = None
    for fname, kinds, kind_name, np_dtype in _CONTENTS:
        values = getattr(contents, fname)
        if not len(values):
            continue
        if found is not None:
            raise InvalidArgumentError(
                f"unexpected explicit tensor data for input tensor '{name}' for model '{model}', binary data was "
                "already supplied."
            )
        if datatype not in kinds:
            raise InvalidArgumentError(
                f"unexpected explicit tensor data for input tensor '{name}' for model '{model}' of type "
                f"'{kind_name}', expected datatype '{datatype}'"
            )
        found = (fname, kind_name, np_dtype)
    shape = check_shape(tensor.shape, name=name, model=model)
    count = element_count(shape)
    dt = DataType.from_protocol(datatype)
    if found is None:  # contents present but empty: only a zero-element tensor fits
        if count:
            raise InvalidArgumentError(
                f"unable to find data for input tensor '{name}' for model '{model}' in request."
            )
        return np.empty(shape, dtype=dt.numpy_dtype if dt is not DataType.BF16 else np.uint16)
    fname, _, np_dtype = found
    values = getattr(contents, fname)
    if len(values) != count:  # reported by the engine's validation, after the shape (Triton's order)
        unit = dt.itemsize or 1
        return DeferredInputError.make(dt, shape, (
            f"input byte size mismatch for input '{name}' for model '{model}'. Expected {count * unit}, "
            f"got {len(values) * unit}"
            if dt is not DataType.BYTES
            else f"expected {count} string elements for inference input '{name}' for model '{model}', got {len(values)}"
        ))
    if np_dtype is None:
        arr = np.empty(count, dtype=np.object_)
        arr[:] = list(values)
    else:
        arr = np.array(values, dtype=np_dtype)
        if arr.dtype != dt.numpy_dtype:  # INT8/INT16/UINT8/UINT16 travel widened; keep the low bytes as Triton does
            arr = arr.astype(dt.numpy_dtype)
    return arr.reshape(shape)


def decode_infer_request(msg: pb.ModelInferRequest, registry: SharedMemoryRegistry | None) -> DecodedRequest:
    """Build the core request; every problem is an InvalidArgumentError (or NOT_FOUND for a region)."""
    model = msg.model_name
    version = parse_version(msg.model_version)
    options, empty_final = _request_parameters(msg.parameters) if len(msg.parameters) else (None, False)
    raw = msg.raw_input_contents
    n_raw = len(raw)
    raw_index = 0
    inputs: dict[str, np.ndarray] = {}
    for tensor in msg.inputs:
        name = tensor.name
        if name in inputs:
            raise InvalidArgumentError(f"[request id: {msg.id or '<id_unknown>'}] input '{name}' already exists in request")
        shm = _shm_params(tensor) if len(tensor.parameters) else None
        has_contents = tensor.HasField("contents")
        if shm is not None:
            if has_contents:
                raise InvalidArgumentError(
                    f"unexpected 'content' provided when using shared memory for input tensor '{name}' for model '{model}'"
                )
            if registry is None:
                raise InvalidArgumentError(SHM_DISABLED)
            inputs[name] = input_from_params(registry, shm, tensor.datatype, tensor.shape, name=name, model=model)
        elif has_contents:
            if n_raw:
                raise InvalidArgumentError(
                    f"contents field must not be specified when using raw_input_contents for '{name}' for model '{model}'"
                )
            inputs[name] = _typed_contents(tensor, model)
        elif raw_index < n_raw:
            inputs[name] = from_raw(tensor.datatype, tensor.shape, raw[raw_index], name=name, model=model, defer=True)
            raw_index += 1
        else:
            raise InvalidArgumentError(f"unable to find data for input tensor '{name}' for model '{model}' in request.")

    requested: list[str] = []
    specs: dict[str, OutputSpec] = {}
    for out in msg.outputs:
        requested.append(out.name)
        if not len(out.parameters):
            continue
        shm = _shm_params(out)
        count = 0
        cls = out.parameters.get("classification")
        if cls is not None:
            if cls.WhichOneof("parameter_choice") != "int64_param":
                raise InvalidArgumentError("invalid value type for 'classification' parameter, expected int64_param")
            count = cls.int64_param
            if count <= 0:
                raise InvalidArgumentError("invalid value for 'classification' parameter, expected >= 0")  # Triton's text
        if shm is not None and count:
            raise InvalidArgumentError("output can't set both 'shared_memory_region' and 'classification'")
        if shm is not None and registry is None:
            raise InvalidArgumentError(SHM_DISABLED)
        if shm is not None:
            registry.get(shm.region)  # type: ignore[union-attr]  # unknown region: NOT_FOUND before inference
        if shm is not None or count:
            specs[out.name] = OutputSpec(count, shm)

    request = build_core_request(model, inputs, tuple(requested) if requested else None, version, msg.id, options)
    return DecodedRequest(request, msg.model_version, specs, empty_final, options)


def build_core_request(model: str, inputs: dict[str, np.ndarray], requested: tuple[str, ...] | None, version: int,
                       request_id: str, options: dict[str, Any] | None) -> InferenceRequest:
    """The core request of a decoded ``ModelInferRequest`` (``options``: from its parameters, or None)."""
    request = InferenceRequest(model_name=model, inputs=inputs, requested_outputs=requested, model_version=version, id=request_id)
    if options is not None:
        request.parameters = dict(options["parameters"])
        request.priority = options["priority"]
        request.timeout_us = options["timeout_us"]
        request.correlation_id = options["correlation_id"]
        request.flags = options["flags"]
    return request


# ---- response ---------------------------------------------------------------------------------------
def set_parameter(target: pb.InferParameter, value: Any) -> None:
    """Store a response parameter (bool, int, str, float); bytes are refused as Triton does."""
    if isinstance(value, (bool, np.bool_)):
        target.bool_param = bool(value)
    elif isinstance(value, (int, np.integer)):
        target.int64_param = int(value)
    elif isinstance(value, str):
        target.string_param = value
    elif isinstance(value, (float, np.floating)):
        target.double_param = float(value)
    elif isinstance(value, (bytes, bytearray)):
        raise UnsupportedError("Response parameter of type 'TRITONSERVER_PARAMETER_BYTES' is not currently supported")
    else:
        target.string_param = str(value)


def _raw_bytes(array: np.ndarray) -> bytes:
    if array.dtype.kind in ("O", "S", "U"):
        return serialize_bytes_tensor(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array.tobytes()


def encode_infer_response(
    result: InferResult,
    decoded: DecodedRequest,
    info: Callable[[str], ModelInfo],
    registry: SharedMemoryRegistry | None,
    *,
    out: pb.ModelInferResponse | None = None,
) -> pb.ModelInferResponse:
    """The wire form of one result: data in ``raw_output_contents``, in output order.

    ``info(version)`` gives the model facts (declared datatypes, labels, batching); it is called only
    for outputs that need them (classification, shared memory, BF16 / UINT16 arrays).
    """
    request = decoded.request
    resp = out if out is not None else pb.ModelInferResponse()
    resp.model_name = result.model_name or request.model_name
    version = result.model_version or (str(request.model_version) if request.model_version > 0 else "")
    resp.model_version = version
    resp.id = result.id or request.id
    if result.parameters:
        for key, value in result.parameters.items():
            set_parameter(resp.parameters[key], value)
    specs = decoded.outputs
    outputs = resp.outputs
    raw_out = resp.raw_output_contents
    for name, array in result.outputs.items():
        array = np.asarray(array)
        spec = specs.get(name) if specs else None
        if spec is None:
            dt = array.dtype
            datatype = "BYTES" if dt.kind in ("O", "S", "U") else _NUMPY_TO_PROTOCOL.get(dt)
            if datatype is None:  # UINT16 vs BF16 (and ml_dtypes bfloat16): the config decides
                datatype = datatype_of(array, info(version).output_types.get(name))
            outputs.add(name=name, datatype=datatype, shape=array.shape)
            raw_out.append(_raw_bytes(array))
            continue
        datatype, shape, data = prepare_output(
            info(version), name, array, class_count=spec.class_count, shm=spec.shm, registry=registry
        )
        outputs.add(name=name, datatype=datatype, shape=shape)
        raw_out.append(b"" if data is None else _raw_bytes(data))
    return resp


_NUMPY_TO_PROTOCOL: dict[np.dtype, str] = {
    DataType(d).numpy_dtype: DataType(d).protocol_name
    for d in DataType
    if d not in (DataType.INVALID, DataType.BYTES, DataType.BF16, DataType.UINT16)
}


def error_stream_response(message: str, decoded_or_msg: Any, final: bool | None) -> pb.ModelStreamInferResponse:
    """A per-request failure on a stream: ``error_message`` set, ``infer_response`` names the request."""
    resp = pb.ModelStreamInferResponse(error_message=message)
    ir = resp.infer_response
    if isinstance(decoded_or_msg, DecodedRequest):
        ir.id = decoded_or_msg.request.id
        if final is not None:
            ir.model_name = decoded_or_msg.request.model_name
            ir.model_version = decoded_or_msg.version_text
    elif decoded_or_msg is not None:
        ir.id = decoded_or_msg.id
    if final is not None:
        ir.parameters[FINAL_KEY].bool_param = final
    return resp


def error_message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, TritonLiteError) else f"{type(exc).__name__}: {exc}"


__all__ = [
    "DecodedRequest",
    "Malformed",
    "OutputSpec",
    "decode_infer_request",
    "build_core_request",
    "encode_infer_response",
    "error_stream_response",
    "error_message",
    "param_value",
    "set_parameter",
    "EMPTY_FINAL_KEY",
    "FINAL_KEY",
]
