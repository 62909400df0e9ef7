"""The cache key of a request: model, version, requested outputs and every input's name, dtype, shape and bytes.

Triton hashes the model name, the version that runs and each input's name and data (core
``TritonCache::Hash``). The dtype, the shape and the requested outputs are hashed here too, so two
requests whose bytes agree but whose shapes, types or asked-for outputs differ never share a response.
blake2b (128 bits) instead of Triton's 64-bit ``boost::hash_combine`` makes a collision negligible.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Mapping, Sequence

import numpy as np

_LEN = struct.Struct("<I").pack


def request_key(model: str, version: int, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> bytes:
    """16-byte digest identifying a response; inputs are the validated (backend) arrays."""
    names = sorted(inputs)
    arrays = [inputs[n] for n in names]
    header = [model, str(version), *outputs, ""]
    for name, arr in zip(names, arrays):
        header += (name, arr.dtype.str, repr(arr.shape))
    h = hashlib.blake2b("\x00".join(header).encode(), digest_size=16)
    update = h.update
    for arr in arrays:
        if arr.dtype.kind == "O":  # BYTES: length-prefixed elements, row-major
            for item in arr.reshape(-1):
                data = item if isinstance(item, bytes) else bytes(item)
                update(_LEN(len(data)))
                update(data)
        elif arr.flags.c_contiguous:
            update(arr)  # the buffer itself, no copy
        else:
            update(np.ascontiguousarray(arr).tobytes())
    return h.digest()


__all__ = ["request_key"]
