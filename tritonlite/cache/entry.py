"""A cached response: its output tensors, as a private copy, and their size in bytes.

The local cache keeps :class:`CacheEntry` objects; the Redis cache stores :func:`encode` bytes and
rebuilds entries with :func:`decode`. The wire form is ours (tritonlite only reads what it wrote):
``b"TLC1"``, the output count, then per output its name, numpy dtype string, shape and data (BYTES
elements length-prefixed, as Triton sends them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from tritonlite.datatypes import deserialize_bytes_tensor, serialize_bytes_tensor
from tritonlite.errors import InternalError

_MAGIC = b"TLC1"
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
#: per-output bookkeeping counted against the cache size besides the tensor data
_OUTPUT_OVERHEAD = 64


@dataclass(frozen=True)
class CacheEntry:
    """Read-only copies of a response's outputs; :meth:`outputs_copy` hands out writable copies."""

    outputs: tuple[tuple[str, np.ndarray], ...]
    nbytes: int

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, np.ndarray]) -> "CacheEntry":
        items = []
        size = 0
        for name, arr in outputs.items():
            copy = np.array(arr, copy=True, order="C")
            copy.flags.writeable = False
            items.append((name, copy))
            size += _OUTPUT_OVERHEAD + len(name) + _data_size(copy)
        return cls(tuple(items), size)

    def outputs_copy(self) -> dict[str, np.ndarray]:
        """What a cache hit returns: the caller may modify these without touching the cache."""
        return {name: arr.copy() for name, arr in self.outputs}


def _data_size(arr: np.ndarray) -> int:
    if arr.dtype.kind == "O":
        return sum(4 + len(v) for v in arr.reshape(-1))
    return int(arr.nbytes)


def encode(entry: CacheEntry) -> bytes:
    parts = [_MAGIC, _U32.pack(len(entry.outputs))]
    for name, arr in entry.outputs:
        raw_name = name.encode()
        dtype = b"O" if arr.dtype.kind == "O" else arr.dtype.str.encode()
        data = serialize_bytes_tensor(arr) if arr.dtype.kind == "O" else arr.tobytes()
        parts += [_U32.pack(len(raw_name)), raw_name, _U32.pack(len(dtype)), dtype, _U32.pack(arr.ndim)]
        parts += [_U64.pack(d) for d in arr.shape]
        parts += [_U64.pack(len(data)), data]
    return b"".join(parts)


def decode(blob: bytes) -> CacheEntry:
    """Rebuild an entry written by :func:`encode`; anything else is an InternalError."""
    view = memoryview(blob)
    if bytes(view[:4]) != _MAGIC:
        raise InternalError("cache entry was not written by tritonlite (bad magic)")
    pos = 4

    def u32() -> int:
        nonlocal pos
        (v,) = _U32.unpack_from(view, pos)
        pos += 4
        return v

    def u64() -> int:
        nonlocal pos
        (v,) = _U64.unpack_from(view, pos)
        pos += 8
        return v

    def chunk(n: int) -> memoryview:
        nonlocal pos
        if pos + n > len(view):
            raise InternalError("cache entry is truncated")
        out = view[pos : pos + n]
        pos += n
        return out

    outputs = {}
    try:
        for _ in range(u32()):
            name = bytes(chunk(u32())).decode()
            dtype = bytes(chunk(u32())).decode()
            shape = tuple(u64() for _ in range(u32()))
            data = chunk(u64())
            if dtype == "O":
                arr = deserialize_bytes_tensor(data).reshape(shape)
            else:
                arr = np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)
            outputs[name] = arr
    except struct.error as exc:
        raise InternalError(f"cache entry is truncated: {exc}") from None
    return CacheEntry.from_outputs(outputs)


__all__ = ["CacheEntry", "encode", "decode"]
