"""Per-model facts a door needs on every request, computed once per loaded model version.

``model_info(engine, name, version)`` resolves the serving :class:`~tritonlite.model.ModelVersion`
(same errors as inference: unknown model → NOT_FOUND, ...) and caches a :class:`ModelInfo` for it:
declared output datatypes (so BF16 outputs are labelled BF16, not UINT16), classification labels,
``max_batch_size``, ``decoupled`` and the input metadata ``generate`` maps JSON keys onto.
:func:`prepare_output` applies classification and shared-memory placement to one output.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tritonlite.datatypes import DataType
from tritonlite.errors import InvalidArgumentError
from tritonlite.protocol.classification import classify, load_labels
from tritonlite.protocol.shm import SHM_DISABLED, SharedMemoryRegistry, ShmTarget, write_output
from tritonlite.protocol.tensors import datatype_of


@dataclass
class ModelInfo:
    name: str
    version: int
    max_batch_size: int
    decoupled: bool
    #: output name -> protocol datatype ("FP32", "BYTES", "BF16", ...)
    output_types: dict[str, str] = field(default_factory=dict)
    #: input name -> (protocol datatype, dims without the batch dim)
    inputs: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)
    #: output name -> labels from its label_filename
    labels: dict[str, list[str]] = field(default_factory=dict)
    #: the version's statistics (doors read how long its requests take to compute)
    stats: Any = None
    #: a door's decode cache for this version (the HTTP door: binary-request JSON header -> decode plan)
    decode_cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 0


_CACHE: "weakref.WeakKeyDictionary[Any, ModelInfo]" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _build(mv: Any) -> ModelInfo:
    cfg = mv.config
    info = ModelInfo(
        name=mv.name,
        version=int(mv.version),
        max_batch_size=int(cfg.max_batch_size),
        decoupled=bool(mv.decoupled),
        stats=mv.stats,
    )
    for out in cfg.output:
        info.output_types[out.name] = DataType(out.data_type).protocol_name
        if out.label_filename:
            try:
                info.labels[out.name] = load_labels(mv.model_dir / out.label_filename)
            except OSError:
                info.labels[out.name] = []
    for inp in cfg.input:
        info.inputs[inp.name] = (DataType(inp.data_type).protocol_name, tuple(int(d) for d in inp.dims))
    return info


def model_info(engine: Any, name: str, version: int = -1) -> ModelInfo:
    """Facts about the version of ``name`` a request for ``version`` (-1 = policy) would run on."""
    mv = engine._loaded_version(name, version)  # raises Triton's lookup errors
    with _LOCK:
        info = _CACHE.get(mv)
        if info is None:
            info = _CACHE[mv] = _build(mv)
    return info


def prepare_output(
    info: ModelInfo,
    name: str,
    array: np.ndarray,
    *,
    class_count: int = 0,
    shm: ShmTarget | None = None,
    registry: SharedMemoryRegistry | None = None,
) -> tuple[str, list[int], np.ndarray | None]:
    """(datatype, shape, array) of one response output after classification / shared memory.

    ``array`` is None in the result when the output was written to its shared memory region.
    """
    if class_count:
        if shm is not None:
            raise InvalidArgumentError(f"output '{name}' cannot use both classification and shared memory")
        array = classify(array, class_count, info.labels.get(name), info.batching, name=name)
        datatype = "BYTES"
    else:
        array = np.asarray(array)
        datatype = datatype_of(array, info.output_types.get(name))
    shape = list(array.shape)
    if shm is not None:
        if registry is None:
            raise InvalidArgumentError(SHM_DISABLED)
        write_output(registry, shm, name, array)
        return datatype, shape, None
    return datatype, shape, array


__all__ = ["ModelInfo", "model_info", "prepare_output"]
