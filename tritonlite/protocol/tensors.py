"""Raw tensor bytes <-> numpy, as the KServe v2 binary extension and gRPC ``raw_*_contents`` carry them.

Little-endian, row-major, no padding. BYTES elements are ``uint32 LE length + bytes``. BOOL is one
byte per element. FP16 is numpy ``float16``; BF16 travels as its 2-byte pattern and is handed to the
engine as ``uint16`` (the dtype the engine validates BF16 inputs against). Fixed-size types are
decoded zero-copy (``np.frombuffer`` views of the caller's buffer: keep the buffer alive and do not
reuse it while the request runs).
"""

from __future__ import annotations

import math
import sys
from typing import Any, Sequence

import numpy as np

from tritonlite.datatypes import DataType, deserialize_bytes_tensor, output_datatype, serialize_bytes_tensor
from tritonlite.errors import InvalidArgumentError
from tritonlite.validation import DeferredInputError

_LITTLE = sys.byteorder == "little"

#: numpy dtype used on the wire for each fixed-size type (BF16 as its raw 16-bit pattern)
_WIRE_DTYPE: dict[DataType, np.dtype] = {
    dt: (np.dtype(np.uint16) if dt is DataType.BF16 else dt.numpy_dtype).newbyteorder("<")
    for dt in DataType
    if dt not in (DataType.INVALID, DataType.BYTES)
}


def element_count(shape: Sequence[int]) -> int:
    """Product of the dims (1 for a scalar shape)."""
    return math.prod(map(int, shape))


#: numpy cannot describe an array with more dims, or whose non-zero dims multiply past this (8-byte items)
_MAX_NDIM = 32
_MAX_ELEMENTS = 2**59


def check_shape(shape: Sequence[int], *, name: str = "", model: str = "") -> tuple[int, ...]:
    """``shape`` as a tuple, refused with InvalidArgumentError when a dim is negative or numpy could not
    even describe it (a shape like ``[0, 2**63 - 1]`` has zero elements yet no array of it exists)."""
    shape = tuple(map(int, shape))
    if shape and min(shape) < 0:
        raise InvalidArgumentError(f"unexpected shape for input '{name}' for model '{model}': negative dimension in {list(shape)}")
    if len(shape) > _MAX_NDIM or math.prod(filter(None, shape)) >= _MAX_ELEMENTS:
        raise InvalidArgumentError(
            f"unexpected shape for input '{name}' for model '{model}': {list(shape)} exceeds the largest tensor that can exist"
        )
    return shape


def wire_dtype(datatype: DataType | str) -> np.dtype:
    """The numpy dtype raw bytes of ``datatype`` decode to (not defined for BYTES)."""
    dt = DataType.from_protocol(datatype) if isinstance(datatype, str) else DataType(datatype)
    try:
        return _WIRE_DTYPE[dt]
    except KeyError:
        raise InvalidArgumentError(f"data type {dt.name} has no fixed-size wire form") from None


def byte_size(datatype: DataType | str, shape: Sequence[int]) -> int | None:
    """Bytes a tensor of this type and shape occupies; None for BYTES (variable)."""
    dt = DataType.from_protocol(datatype) if isinstance(datatype, str) else DataType(datatype)
    if dt is DataType.BYTES:
        return None
    return element_count(shape) * dt.itemsize


def from_raw(
    datatype: DataType | str,
    shape: Sequence[int],
    buffer: Any,
    *,
    name: str = "",
    model: str = "",
    defer: bool = False,
) -> np.ndarray:
    """Decode raw wire bytes into an array of ``shape``.

    Fixed-size types return a read-only view of ``buffer`` (no copy). BYTES returns an object array
    of ``bytes``. A size that does not match the shape raises :class:`InvalidArgumentError` with
    Triton's message (``name``/``model`` fill it in); with ``defer`` it (and an unknown datatype name)
    comes back as a :class:`~tritonlite.validation.DeferredInputError` instead, which the engine's
    validation raises in Triton's order (after the names, datatypes and shapes are checked).
    """
    key = (datatype, tuple(shape))
    plan = _PLANS.get(key)
    if plan is not None and (type(buffer) is bytes or (type(buffer) is memoryview and buffer.format == "B")):
        # a fixed-size type and shape seen before
        wdt, count, expected, shape = plan
        if len(buffer) == expected:
            return np.frombuffer(buffer, dtype=wdt, count=count).reshape(shape) if count else np.empty(shape, dtype=wdt)
    if defer and isinstance(datatype, str) and datatype not in _KNOWN:
        return DeferredInputError.make(DataType.INVALID, check_shape(shape, name=name, model=model), "")
    dt = DataType.from_protocol(datatype) if isinstance(datatype, str) else DataType(datatype)
    shape = check_shape(shape, name=name, model=model)
    view = memoryview(buffer).cast("B") if not isinstance(buffer, (bytes, bytearray)) else buffer
    count = math.prod(shape)
    if dt is DataType.BYTES:
        if count == 0 and len(view) == 0:
            return np.empty(shape, dtype=np.object_)
        try:
            arr = deserialize_bytes_tensor(view)
        except InvalidArgumentError:
            if not defer:
                raise
            text, prefixed = _bytes_problem(view, name, model)
            return DeferredInputError.make(dt, shape, text, prefixed)
        if arr.size != count:
            text = f"expected {count} string elements for inference input '{name}' for model '{model}', got {arr.size}"
            if defer:
                return DeferredInputError.make(dt, shape, text)
            raise InvalidArgumentError(text)
        return arr.reshape(shape)
    wdt = _WIRE_DTYPE[dt]
    expected = count * wdt.itemsize
    if len(view) != expected:
        text = f"input byte size mismatch for input '{name}' for model '{model}'. Expected {expected}, got {len(view)}"
        if defer:
            return DeferredInputError.make(dt, shape, text)
        raise InvalidArgumentError(text)
    arr = np.frombuffer(view, dtype=wdt, count=count) if count else np.empty(0, dtype=wdt)
    if not _LITTLE:  # pragma: no cover - big-endian hosts
        return arr.astype(wdt.newbyteorder("=")).reshape(shape)
    if len(_PLANS) < _MAX_PLANS and isinstance(key[0], (str, DataType)):
        _PLANS[key] = (wdt, count, expected, shape)
    return arr.reshape(shape)


def _bytes_problem(view: Any, name: str, model: str) -> tuple[str, bool]:
    """Triton's message (and whether it takes the request-id prefix) for a BYTES buffer that does not parse."""
    offset, end = 0, len(view)
    while offset + 4 <= end:
        length = int.from_bytes(bytes(view[offset : offset + 4]), "little")
        offset += 4
        if offset + length > end:
            return (f"incomplete string data for inference input '{name}', expecting string of length {length} "
                    f"but only {end - offset} bytes available", False)
        offset += length
    return (f"incomplete string length indicator for inference input '{name}' for model '{model}', expecting 4 bytes "
            f"but only {end - offset} bytes available. Please make sure the string length indicator is in one buffer.", True)


_KNOWN = frozenset(d.name for d in DataType if d is not DataType.INVALID)

#: (datatype, shape) -> (wire dtype, element count, byte size, shape) of fixed-size tensors already decoded
#: once: a client repeats the same few shapes, so the checks above run once per shape
_PLANS: dict[tuple[Any, tuple[int, ...]], tuple[np.dtype, int, int, tuple[int, ...]]] = {}
_MAX_PLANS = 4096


def to_raw(array: np.ndarray) -> bytes | memoryview:
    """Encode an array as raw wire bytes: a memoryview of the data when it is already contiguous
    little-endian, else a copy. Object/str/bytes arrays are BYTES (length-prefixed)."""
    arr = np.asarray(array)
    if arr.dtype.kind in ("O", "S", "U"):
        return serialize_bytes_tensor(arr)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not _LITTLE):  # pragma: no cover
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    if arr.size == 0:
        return b""
    return memoryview(arr).cast("B")


def datatype_of(array: np.ndarray, declared: DataType | str | None = None) -> str:
    """Protocol datatype name for an output array: the array's own type (see
    :func:`~tritonlite.datatypes.output_datatype`); ``declared`` (the config type) only tells BF16 from UINT16."""
    hint = None
    if declared is not None:
        hint = DataType.from_protocol(declared) if isinstance(declared, str) else DataType(declared)
    return output_datatype(np.asarray(array).dtype, hint).protocol_name


__all__ = ["check_shape", "element_count", "wire_dtype", "byte_size", "from_raw", "to_raw", "datatype_of"]
