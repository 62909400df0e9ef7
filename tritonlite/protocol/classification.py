"""Classification extension (SPEC §2.2): replace an output by its top-k ``"value:index[:label]"`` strings.

Same in HTTP and gRPC: the result is a BYTES tensor of shape ``[batch, min(k, n)]`` for models that
batch (``max_batch_size > 0``), else ``[min(k, n)]``; values print like C++ ``std::to_string`` (six
decimals for floats), entries sort by value, descending; labels come from the output's
``label_filename`` (one label per line, line i = class i).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from tritonlite.errors import InvalidArgumentError

#: Triton refuses to classify outputs with more elements than this
MAX_CLASSIFICATION_ELEMENTS = 1_000_000

_INT_KINDS = ("i", "u")


def load_labels(path: str | os.PathLike[str]) -> list[str]:
    """Read a label file: one label per line, line ``i`` is class ``i``."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return [line.rstrip("\r") for line in text.split("\n")][: None if not text.endswith("\n") else -1]


def _fmt(value: np.generic, is_int: bool) -> str:
    if is_int:
        return str(int(value))
    return "%f" % float(value)


def _topk(flat: np.ndarray, k: int, labels: Sequence[str] | None, is_int: bool) -> list[bytes]:
    n = flat.size
    count = min(n, k)
    if count == 0:
        return []
    # descending by value, ties by ascending index: a stable ascending sort of the reversed array, read backwards
    order = n - 1 - np.argsort(flat[::-1], kind="stable")[::-1]
    out: list[bytes] = []
    for idx in order[:count]:
        idx = int(idx)
        text = f"{_fmt(flat[idx], is_int)}:{idx}"
        if labels is not None and idx < len(labels):
            text += ":" + labels[idx]
        out.append(text.encode("utf-8"))
    return out


def classify(
    array: np.ndarray,
    class_count: int,
    labels: Sequence[str] | None = None,
    batching: bool = False,
    *,
    name: str = "",
) -> np.ndarray:
    """Top-``class_count`` classification of ``array`` as an object array of ``bytes``.

    ``batching`` (the model's ``max_batch_size > 0``) classifies each batch item separately.
    Integer and FP32/FP64 outputs are supported; others raise :class:`InvalidArgumentError`.
    """
    arr = np.asarray(array)
    kind = arr.dtype.kind
    if kind not in _INT_KINDS and not (kind == "f" and arr.dtype.itemsize in (4, 8)):
        from tritonlite.datatypes import DataType

        try:
            tname = DataType.from_numpy(arr.dtype).name
        except Exception:
            tname = str(arr.dtype)
        raise InvalidArgumentError(f"class result not available for output due to unsupported type '{tname}'")
    if class_count <= 0:
        raise InvalidArgumentError(f"classification count must be positive for output '{name}'")
    if arr.size > MAX_CLASSIFICATION_ELEMENTS:
        raise InvalidArgumentError(
            f"classification output '{name}' has {arr.size} elements, more than the {MAX_CLASSIFICATION_ELEMENTS} supported"
        )
    is_int = kind in _INT_KINDS
    if batching and arr.ndim >= 1:
        batch = arr.shape[0]
        per_item = arr.reshape(batch, -1) if batch else arr.reshape(0, 0)
        n = per_item.shape[1] if batch else 0
        rows = [_topk(per_item[b], class_count, labels, is_int) for b in range(batch)]
        out = np.empty((batch, min(n, class_count)), dtype=np.object_)
        for b, row in enumerate(rows):
            out[b, :] = row
        return out
    flat = arr.reshape(-1)
    items = _topk(flat, class_count, labels, is_int)
    out = np.empty(len(items), dtype=np.object_)
    out[:] = items
    return out


__all__ = ["classify", "load_labels", "MAX_CLASSIFICATION_ELEMENTS"]
