"""The adapter every framework backend shares: requests in, named arrays to the framework, results out.

It concatenates the requests of a batch along dim 0 (when the model batches), calls
``run(feeds, output_names)``, splits the outputs back by each request's batch size, applies an
output ``reshape`` and keeps only the outputs each request asked for. A framework module then only
maps named numpy arrays to named numpy arrays.
"""

from __future__ import annotations

import abc
import time
from typing import Mapping, Sequence

import numpy as np

from tritonlite.errors import InternalError
from tritonlite.request import InferenceRequest, InferResult


class FrameworkInstance(abc.ABC):
    """Base class of framework backend instances; subclasses implement :meth:`run`."""

    def __init__(self, config: object) -> None:
        self.max_batch_size = int(config.max_batch_size)  # type: ignore[attr-defined]
        self.output_dims: dict[str, tuple[int, ...]] = {
            o.name: tuple(int(d) for d in o.dims) for o in config.output if o.HasField("reshape")  # type: ignore[attr-defined]
        }

    @abc.abstractmethod
    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str]) -> Mapping[str, np.ndarray]:
        """Run the framework on named arrays; return the named outputs asked for."""

    def close(self) -> None:
        """Release framework resources; the default has none."""

    def execute(self, requests: Sequence[InferenceRequest]) -> list[InferResult]:
        if len(requests) == 1:
            feeds: Mapping[str, np.ndarray] = requests[0].backend_inputs
            wanted: Sequence[str] = requests[0].output_names
        else:
            names = requests[0].backend_inputs.keys()
            feeds = {n: np.concatenate([r.backend_inputs[n] for r in requests], axis=0) for n in names}
            wanted = list(dict.fromkeys(n for r in requests for n in r.output_names))
        t_input = time.monotonic_ns()
        outputs = self.run(feeds, wanted)
        t_infer = time.monotonic_ns()
        for r in requests:
            r.times.compute_input_end = t_input
            r.times.compute_infer_end = t_infer
        return self._split(requests, outputs)

    def _split(self, requests: Sequence[InferenceRequest], outputs: Mapping[str, np.ndarray]) -> list[InferResult]:
        batching = self.max_batch_size > 0
        results: list[InferResult] = []
        offset = 0
        for r in requests:
            n = r.batch_size or 1
            out: dict[str, np.ndarray] = {}
            for name in r.output_names:
                arr = outputs.get(name)
                if arr is None:
                    continue
                if len(requests) > 1:
                    if not batching or arr.ndim == 0 or arr.shape[0] != sum(q.batch_size or 1 for q in requests):
                        raise InternalError(f"output '{name}' does not carry the batch dimension; cannot split a batch")
                    arr = arr[offset : offset + n]
                dims = self.output_dims.get(name)
                if dims is not None:
                    arr = arr.reshape(((arr.shape[0],) if batching else ()) + dims)
                out[name] = arr
            results.append(InferResult(outputs=out))
            offset += n
        return results


__all__ = ["FrameworkInstance"]
