"""pb_utils value types: constants, errors, logging, and the numpy-backed ``Tensor``.

Split from :mod:`tritonlite.backends.python.pb_utils` (which re-exports everything) to keep each
module small; nothing here knows about requests or the engine.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from tritonlite.datatypes import DataType, as_bytes_array
from tritonlite.errors import ErrorCode, TritonLiteError

TRITONSERVER_REQUEST_FLAG_SEQUENCE_START = 1
TRITONSERVER_REQUEST_FLAG_SEQUENCE_END = 2
TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1
TRITONSERVER_REQUEST_RELEASE_ALL = 1
TRITONSERVER_REQUEST_RELEASE_RESCHEDULE = 2
TRITONSERVER_MEMORY_CPU = 0
TRITONSERVER_MEMORY_GPU = 2

TRITON_STRING_TO_NUMPY: dict[str, Any] = {
    "TYPE_BOOL": bool,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}

_NUMPY_BY_TRITON: dict[int, Any] = {
    int(dt): dt.numpy_dtype.type for dt in DataType if dt not in (DataType.INVALID, DataType.BF16)
}
_TRITON_BY_NUMPY: dict[np.dtype, int] = {np.dtype(v): k for k, v in _NUMPY_BY_TRITON.items()}

_LOG = logging.getLogger("tritonlite.python_model")


def as_text(value: Any, what: str) -> str:
    """A name or message as python_backend's C++ bindings take it: ``str``, or ``bytes`` read as UTF-8.

    Triton's pybind11 layer accepts both for every ``std::string`` argument, so a model name read from a
    BYTES input tensor (``np.object_`` of ``bytes``) works as is; anything else is a TypeError.
    """
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    raise TypeError(f"{what} must be str or bytes, found type '{type(value)}'")


class TritonError:
    """An error value a response carries (not an exception, as in python_backend)."""

    UNKNOWN = int(ErrorCode.UNKNOWN)
    INTERNAL = int(ErrorCode.INTERNAL)
    NOT_FOUND = int(ErrorCode.NOT_FOUND)
    INVALID_ARG = int(ErrorCode.INVALID_ARG)
    UNAVAILABLE = int(ErrorCode.UNAVAILABLE)
    UNSUPPORTED = int(ErrorCode.UNSUPPORTED)
    ALREADY_EXISTS = int(ErrorCode.ALREADY_EXISTS)
    CANCELLED = int(ErrorCode.CANCELLED)

    __slots__ = ("_message", "_code")

    def __init__(self, message: str | bytes, code: int = 1) -> None:
        self._message = as_text(message, "message") if isinstance(message, (bytes, bytearray)) else str(message)
        self._code = int(code)

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code

    def __str__(self) -> str:
        return self._message

    def __repr__(self) -> str:
        return f"TritonError({self._message!r}, code={self._code})"


class TritonModelException(Exception):
    """Raised by pb_utils calls that fail; models raise it too to fail initialize/execute."""

    def message(self) -> str:
        return str(self)


class Logger:
    """Model logging, routed to the ``tritonlite.python_model`` stdlib logger (never configured here)."""

    INFO = 0
    WARNING = 1
    ERROR = 2
    VERBOSE = 3
    _LEVELS = {INFO: logging.INFO, WARNING: logging.WARNING, ERROR: logging.ERROR, VERBOSE: logging.DEBUG}

    @staticmethod
    def log(message: str | bytes, level: int = 0) -> None:
        _LOG.log(Logger._LEVELS.get(level, logging.INFO), "%s", _log_text(message), stacklevel=2)

    @staticmethod
    def log_info(message: str | bytes) -> None:
        _LOG.info("%s", _log_text(message), stacklevel=2)

    @staticmethod
    def log_warn(message: str | bytes) -> None:
        _LOG.warning("%s", _log_text(message), stacklevel=2)

    @staticmethod
    def log_error(message: str | bytes) -> None:
        _LOG.error("%s", _log_text(message), stacklevel=2)

    @staticmethod
    def log_verbose(message: str | bytes) -> None:
        _LOG.debug("%s", _log_text(message), stacklevel=2)


def _log_text(message: Any) -> Any:
    return as_text(message, "message") if isinstance(message, (bytes, bytearray)) else message


class PreferredMemory:
    """Where BLS outputs should live; in-process everything is CPU memory, kept for the API."""

    __slots__ = ("preferred_memory_type", "preferred_device_id")

    def __init__(self, preferred_memory_type: int = TRITONSERVER_MEMORY_CPU, preferred_device_id: int = 0) -> None:
        self.preferred_memory_type = preferred_memory_type
        self.preferred_device_id = preferred_device_id


class InferenceTrace:
    """The trace of a request handed to ``execute`` (``request.trace()``), as python_backend's.

    Pass it as ``pb_utils.InferenceRequest(..., trace=request.trace())`` and the BLS request is
    traced as a child of this one (``parent_id``; a span under this model's span in OpenTelemetry
    mode); BLS requests made without it are not traced, as in Triton. An untraced request's trace
    is empty and hands nothing on. ``get_context()`` is the OpenTelemetry context of this model's
    span as JSON (``{"traceparent": "00-..."}``), None in Triton's trace mode or when untraced.
    """

    __slots__ = ("_handle", "_context")

    def __init__(self) -> None:
        #: what the engine makes the child trace from: the core ``RequestTrace`` (or, in an isolated
        #: model's process, the token its parent process knows the request by); None: not traced
        self._handle: Any = None
        self._context = ""

    @classmethod
    def _of(cls, handle: Any) -> "InferenceTrace":
        """``handle``: anything with ``context_json()`` (a ``RequestTrace``, an isolated model's ``RemoteTrace``) or None."""
        self = cls()
        self._handle = handle
        if handle is not None:
            self._context = handle.context_json()
        return self

    def get_context(self) -> str | None:
        return self._context or None


def triton_string_to_numpy(triton_type_string: str) -> Any:
    return TRITON_STRING_TO_NUMPY[triton_type_string]


def triton_to_numpy_type(data_type: int) -> Any:
    return _NUMPY_BY_TRITON.get(int(data_type))


def numpy_to_triton_type(data_type: Any) -> int | None:
    try:
        dt = np.dtype(data_type)
    except TypeError:
        return None
    if dt.kind in ("O", "S"):
        return 13
    return _TRITON_BY_NUMPY.get(dt)


class _DLPackCapsule:
    """Adapter so numpy can consume a bare DLPack capsule (numpy wants an object with __dlpack__)."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)


class Tensor:
    """A named tensor; numpy-backed, so ``as_numpy`` never copies."""

    __slots__ = ("_name", "_array", "_dtype")

    def __init__(self, name: str | bytes, numpy_array: np.ndarray, triton_dtype: int | None = None) -> None:
        name = as_text(name, "Tensor name")
        if not name:
            raise TritonModelException("Tensor name cannot be an empty string.")
        arr = numpy_array if isinstance(numpy_array, np.ndarray) else np.asarray(numpy_array)
        if triton_dtype is not None and _TRITON_BY_NUMPY.get(arr.dtype) != triton_dtype:
            arr = arr.view(triton_to_numpy_type(triton_dtype))
        try:
            dtype = DataType.from_numpy(arr.dtype)
        except TritonLiteError as exc:
            raise TritonModelException(str(exc)) from None
        if dtype is DataType.BYTES:
            if arr.dtype != np.object_ or not all(type(v) is bytes for v in arr.flat):
                arr = as_bytes_array(arr)
        elif not arr.flags.c_contiguous:
            arr = np.ascontiguousarray(arr)
        self._name = name
        self._array = arr
        self._dtype = dtype

    @classmethod
    def _wrap(cls, name: str, array: np.ndarray) -> "Tensor":
        """Adopt an engine array as is (inputs, BLS outputs): no checks, no copy."""
        self = cls.__new__(cls)
        self._name = name
        self._array = array
        self._dtype = DataType.from_numpy(array.dtype)
        return self

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        if self._dtype is DataType.BF16:
            raise TritonModelException(
                "Tensor dtype is BF16 and cannot be converted to NumPy. Use to_dlpack() and from_dlpack() instead."
            )
        return self._array

    def triton_dtype(self) -> int:
        return int(self._dtype)

    def shape(self) -> list[int]:
        return list(self._array.shape)

    def is_cpu(self) -> bool:
        return True

    def to_dlpack(self) -> Any:
        if self._dtype is DataType.BYTES:
            raise TritonModelException("DLPack does not have support for string tensors.")
        return self._array.__dlpack__()

    def __dlpack__(self, stream: Any = None) -> Any:
        return self.to_dlpack()

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)

    @staticmethod
    def from_dlpack(name: str | bytes, tensor: Any) -> "Tensor":
        name = as_text(name, "Tensor name")
        if not name:
            raise TritonModelException("Tensor name cannot be an empty string.")
        source = tensor if hasattr(tensor, "__dlpack__") else _DLPackCapsule(tensor)
        if source is not tensor and type(tensor).__name__ != "PyCapsule":
            raise TritonModelException(
                "Provided tensor is not supported. Tensor must be a DLPack capsule or have a `__dlpack__` attribute"
            )
        try:
            arr = np.from_dlpack(source)
        except (BufferError, RuntimeError, TypeError, ValueError) as exc:
            raise TritonModelException(f"Unable to read the DLPack tensor on the CPU: {exc}") from exc
        if not arr.flags.c_contiguous:
            raise TritonModelException(
                "DLPack tensor is not contiguous. Only contiguous DLPack tensors that are stored in C-Order are supported."
            )
        return Tensor._wrap(name, arr)

    def __repr__(self) -> str:
        return f"Tensor({self._name!r}, dtype={self._dtype.name}, shape={self.shape()})"


__all__ = ["Logger", "PreferredMemory", "InferenceTrace", "Tensor", "TritonError", "TritonModelException"]
