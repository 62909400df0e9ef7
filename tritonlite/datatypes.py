"""Tensor data types: one table joining Triton's config enum, the KServe protocol names and numpy.

Config enum ``TYPE_STRING`` is the protocol's ``BYTES``; the numbering is the shared TRITONSERVER
order (BOOL=1 … BYTES/STRING=13, BF16=14). BYTES tensors are numpy object arrays of ``bytes``.
"""

from __future__ import annotations

import enum
import struct
from typing import Any

import numpy as np

from tritonlite.errors import InvalidArgumentError


class DataType(enum.IntEnum):
    """Element type of a tensor (numbers are Triton's ``DataType`` enum)."""

    INVALID = 0
    BOOL = 1
    UINT8 = 2
    UINT16 = 3
    UINT32 = 4
    UINT64 = 5
    INT8 = 6
    INT16 = 7
    INT32 = 8
    INT64 = 9
    FP16 = 10
    FP32 = 11
    FP64 = 12
    BYTES = 13
    BF16 = 14

    @property
    def protocol_name(self) -> str:
        """KServe v2 name (``FP32``, ``BYTES``)."""
        return self.name

    @property
    def config_name(self) -> str:
        """config.pbtxt enum name (``TYPE_FP32``, ``TYPE_STRING``)."""
        return "TYPE_STRING" if self is DataType.BYTES else f"TYPE_{self.name}"

    @property
    def itemsize(self) -> int:
        """Bytes per element; 0 for BYTES (variable) and INVALID."""
        return _ITEMSIZE[self]

    @property
    def numpy_dtype(self) -> np.dtype:
        """The numpy dtype carrying this type (object for BYTES)."""
        try:
            return _TO_NUMPY[self]
        except KeyError:
            raise InvalidArgumentError(f"data type {self.name} has no numpy equivalent") from None

    @classmethod
    def from_protocol(cls, name: str) -> "DataType":
        """Parse a protocol name (``FP32``); unknown names are an InvalidArgumentError."""
        dt = _FROM_PROTOCOL.get(name)
        if dt is None:
            raise InvalidArgumentError(f"invalid datatype '{name}'")
        return dt

    @classmethod
    def from_config(cls, name: str | int) -> "DataType":
        """Parse a config enum name (``TYPE_FP32``) or number."""
        if isinstance(name, int):
            return cls(name)
        if name == "TYPE_STRING":
            return cls.BYTES
        if name.startswith("TYPE_") and name[5:] in cls.__members__ and name != "TYPE_BYTES":
            return cls[name[5:]]
        raise InvalidArgumentError(f"invalid data type '{name}'")

    @classmethod
    def from_numpy(cls, dtype: Any) -> "DataType":
        """The DataType of a numpy dtype (object/bytes_/str_ arrays are BYTES)."""
        dt = np.dtype(dtype)
        found = _FROM_NUMPY.get(dt)
        if found is not None:
            return found
        if dt.kind in ("O", "S", "U"):
            return cls.BYTES
        if dt.name == "bfloat16":
            return cls.BF16
        raise InvalidArgumentError(f"unsupported numpy dtype '{dt}'")


_TO_NUMPY: dict[DataType, np.dtype] = {
    DataType.BOOL: np.dtype(np.bool_),
    DataType.UINT8: np.dtype(np.uint8),
    DataType.UINT16: np.dtype(np.uint16),
    DataType.UINT32: np.dtype(np.uint32),
    DataType.UINT64: np.dtype(np.uint64),
    DataType.INT8: np.dtype(np.int8),
    DataType.INT16: np.dtype(np.int16),
    DataType.INT32: np.dtype(np.int32),
    DataType.INT64: np.dtype(np.int64),
    DataType.FP16: np.dtype(np.float16),
    DataType.FP32: np.dtype(np.float32),
    DataType.FP64: np.dtype(np.float64),
    DataType.BYTES: np.dtype(np.object_),
}
_FROM_NUMPY: dict[np.dtype, DataType] = {v: k for k, v in _TO_NUMPY.items()}
_FROM_PROTOCOL: dict[str, DataType] = {d.name: d for d in DataType if d is not DataType.INVALID}
_ITEMSIZE: dict[DataType, int] = {d: (_TO_NUMPY[d].itemsize if d in _TO_NUMPY and d is not DataType.BYTES else 0) for d in DataType}
_ITEMSIZE[DataType.BF16] = 2


def output_datatype(dtype: Any, declared: "DataType | int | None" = None) -> DataType:
    """The type an output array is sent as: its own numpy dtype, as Triton labels it.

    Triton (python_backend, ensembles, core) labels every response output with the dtype the model
    actually returned and never casts it to the config's ``data_type``: an int64 array for an output
    declared TYPE_INT32 goes out as INT64 data labelled INT64. The declared type only decides what a
    2-byte unsigned array means (numpy has no bfloat16, so BF16 travels as uint16). Every door (HTTP,
    gRPC, C, Java) labels outputs through this one rule, so a label can never disagree with the bytes.
    """
    dt = np.dtype(dtype)
    found = DataType.from_numpy(dt.newbyteorder("=") if dt.byteorder in "<>" and dt.kind not in "OSU" else dt)
    if found is DataType.UINT16 and declared is not None and int(declared) == DataType.BF16:
        return DataType.BF16
    return found


def as_bytes_array(values: Any) -> np.ndarray:
    """Coerce a BYTES tensor to an object array of ``bytes`` (str elements are UTF-8 encoded)."""
    arr = np.asarray(values, dtype=np.object_)
    out = np.empty(arr.shape, dtype=np.object_)
    flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
    for i, v in enumerate(flat_in):
        if isinstance(v, bytes):
            flat_out[i] = v
        elif isinstance(v, (bytearray, memoryview, np.bytes_)):
            flat_out[i] = bytes(v)
        else:
            flat_out[i] = str(v).encode("utf-8")
    return out


def serialize_bytes_tensor(values: np.ndarray) -> bytes:
    """Length-prefixed (uint32 LE) concatenation of the elements, row-major, as Triton sends BYTES."""
    parts: list[bytes] = []
    pack = struct.Struct("<I").pack
    for v in as_bytes_array(values).reshape(-1):
        parts.append(pack(len(v)))
        parts.append(v)
    return b"".join(parts)


def deserialize_bytes_tensor(buffer: bytes | memoryview) -> np.ndarray:
    """Inverse of :func:`serialize_bytes_tensor`: a 1-D object array of ``bytes``."""
    view = memoryview(buffer)
    items: list[bytes] = []
    offset, end = 0, len(view)
    while offset < end:
        if offset + 4 > end:
            raise InvalidArgumentError("malformed BYTES tensor: truncated length prefix")
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + length > end:
            raise InvalidArgumentError("malformed BYTES tensor: element runs past the end of the buffer")
        items.append(bytes(view[offset : offset + length]))
        offset += length
    out = np.empty(len(items), dtype=np.object_)
    out[:] = items
    return out


__all__ = ["DataType", "output_datatype", "as_bytes_array", "serialize_bytes_tensor", "deserialize_bytes_tensor"]
