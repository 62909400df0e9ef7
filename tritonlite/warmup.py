"""Triton's model warmup: run each ``model_warmup`` sample on every instance before the model is READY.

As Triton core does (``TritonModelInstance::GenerateWarmupData`` / ``WarmUp``): a sample with
``batch_size`` N is N requests of batch 1 (no batch dim for models that do not batch) executed together
on the instance, ``count`` times (at least once); ``batch_size: 0`` samples are skipped. Inputs are zeros
(``zero_data``), random values (``random_data``; BYTES get empty strings, as in Triton) or bytes read from
``<model>/warmup/<input_data_file>`` (BYTES files hold length-prefixed elements). Inputs the config does not
list (sequence controls, states) pass straight to the backend, as Triton's override inputs do.

Warmup calls the backend instance directly, the same ``execute`` the schedulers call, but not through a
scheduler or :class:`~tritonlite.scheduling.BatchRunner`, so it never appears in statistics or metrics.
With the engine's rate limiter on, each warmup execution holds the instance's resources, as core's do.
A failing sample fails the load with Triton's reason ``failed to run warmup sample '<name>': <error>; ``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tritonlite.datatypes import DataType, deserialize_bytes_tensor
from tritonlite.errors import InvalidArgumentError, TritonLiteError
from tritonlite.request import InferenceRequest, InferResult, ResponseSink
from tritonlite.scheduling.rate_limiter import InstanceGate
from tritonlite.validation import IOSpec, normalize_request

#: the folder of a model directory that ``input_data_file`` names are relative to (core ``kWarmupDataFolder``)
WARMUP_FOLDER = "warmup"


@dataclass(frozen=True)
class WarmupSample:
    """One ``model_warmup`` entry, its input arrays built once (per request: ``[1] + dims`` when batching)."""

    name: str
    batch_size: int
    count: int
    inputs: dict[str, np.ndarray]


def build_samples(config: Any, model_dir: Path, model_name: str) -> list[WarmupSample]:
    """The warmup samples of ``config``; a bad setting or missing file raises InvalidArgumentError naming it."""
    samples: list[WarmupSample] = []
    batching = int(config.max_batch_size) > 0
    rng = np.random.default_rng()
    for warmup in config.model_warmup:
        if warmup.batch_size == 0:
            continue  # Triton: "Skipping batch 0 warmup sample"
        where = f"model '{model_name}' warmup sample '{warmup.name}'"
        if batching and warmup.batch_size > config.max_batch_size:
            raise InvalidArgumentError(
                f"{where}: batch_size {warmup.batch_size} exceeds the model's max_batch_size {config.max_batch_size}"
            )
        inputs = {}
        for name in sorted(warmup.inputs):
            arr = _input_data(warmup.inputs[name], name, where, model_dir, rng)
            inputs[name] = arr.reshape((1,) + arr.shape) if batching else arr
        samples.append(WarmupSample(warmup.name, int(warmup.batch_size), max(1, int(warmup.count)), inputs))
    return samples


def _input_data(meta: Any, name: str, where: str, model_dir: Path, rng: np.random.Generator) -> np.ndarray:
    if meta.data_type == 0:
        raise InvalidArgumentError(f"{where}: input '{name}' must set data_type")
    dims = tuple(int(d) for d in meta.dims)
    if any(d < 0 for d in dims):
        raise InvalidArgumentError(
            f"{where}: warmup setting expects all variable-size dimensions are specified for input '{name}'"
        )
    dt = DataType(meta.data_type)
    count = int(np.prod(dims)) if dims else 1
    kind = meta.WhichOneof("input_data_type")
    if kind is None:
        raise InvalidArgumentError(f"{where}: warmup setting expects input '{name}' to have input_data_type set")
    if dt is DataType.BYTES:
        if kind == "input_data_file":
            items = deserialize_bytes_tensor(_read(meta.input_data_file, name, where, model_dir))
            if items.size != count:
                raise InvalidArgumentError(
                    f"{where}: warmup setting expects {count} BYTES elements for input '{name}', but the data "
                    f"provided from {meta.input_data_file} has {items.size} elements"
                )
            return items.reshape(dims)
        out = np.empty(dims, dtype=np.object_)
        out.reshape(-1)[:] = [b""] * count  # zero data, also for random_data (Triton's rule)
        return out
    np_dtype = np.dtype(np.uint16) if dt is DataType.BF16 else dt.numpy_dtype
    if kind == "zero_data":
        return np.zeros(dims, dtype=np_dtype)
    if kind == "random_data":
        return _random(rng, np_dtype, dims)
    data = _read(meta.input_data_file, name, where, model_dir)
    need = count * np_dtype.itemsize
    if len(data) < need:
        raise InvalidArgumentError(
            f"{where}: warmup setting expects {need} bytes, but the data provided from {meta.input_data_file} "
            f"only has {len(data)} bytes"
        )
    return np.frombuffer(data[:need], dtype=np_dtype).reshape(dims).copy()


def _random(rng: np.random.Generator, dtype: np.dtype, dims: tuple[int, ...]) -> np.ndarray:
    if dtype.kind == "f":
        return rng.random(dims, dtype=np.float64).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, dims).astype(bool)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, dims, dtype=dtype, endpoint=True)


def _read(file_name: str, name: str, where: str, model_dir: Path) -> bytes:
    path = Path(model_dir) / WARMUP_FOLDER / file_name
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"{where}: input '{name}' input_data_file '{file_name}' does not exist (looked for {path})"
        ) from None
    except OSError as exc:
        raise InvalidArgumentError(f"{where}: input '{name}' input_data_file '{file_name}' cannot be read: {exc}") from None


class _Collector:
    """The sink of one warmup request: remembers errors, signals its final response."""

    def __init__(self, errors: list[str]) -> None:
        self.done = threading.Event()
        self._errors = errors

    def __call__(self, result: InferResult | None, error: TritonLiteError | None, final: bool, reason: str) -> None:
        if error is not None:
            self._errors.append(error.message)
        if final:
            self.done.set()


def run_samples(samples: Sequence[WarmupSample], instance: Any, spec: IOSpec, model_name: str,
                gate: InstanceGate | None = None) -> None:
    """Run every sample on ``instance``; the first failing sample raises InvalidArgumentError.

    With the engine's rate limiter on, ``gate`` is the instance's: each execution waits for the
    instance's resources and gives them back when its responses are in (core sends its WARM_UP
    payload through the rate limiter), so warmup never runs beside a model holding them.
    """
    batching = spec.max_batch_size > 0
    for sample in samples:
        for _ in range(sample.count):
            errors: list[str] = []
            requests, collectors = _requests(sample, spec, model_name, errors)
            groups = [requests] if batching else [[r] for r in requests]  # a non-batching model runs one at a time
            for group in groups:
                if gate is not None:
                    gate.acquire()
                try:
                    _execute(instance, group, collectors, errors)
                finally:
                    if gate is not None:
                        gate.release()
                if errors:
                    break
            if errors:
                raise InvalidArgumentError(f"failed to run warmup sample '{sample.name}': " + "".join(f"{e}; " for e in errors))


def _execute(instance: Any, group: list[InferenceRequest], collectors: dict[int, "_Collector"], errors: list[str]) -> None:
    """One warmup execution; returns once every response of ``group`` is in, errors appended to ``errors``."""
    try:
        results = instance.execute(group)
    except TritonLiteError as exc:
        errors.append(exc.message)
        return
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        return
    if results is None:  # responses come through the sinks (decoupled / response sender)
        for r in group:
            collectors[id(r)].done.wait()
    else:
        errors.extend(res.error.message for res in results if res is not None and res.error is not None)


def _requests(sample: WarmupSample, spec: IOSpec, model_name: str, errors: list[str]) -> tuple[list[InferenceRequest], dict[int, _Collector]]:
    requests, collectors = [], {}
    for i in range(sample.batch_size):
        original = {n: a for n, a in sample.inputs.items() if n in spec.inputs}
        request = InferenceRequest(model_name=model_name, inputs=original, id=f"warmup:{sample.name}:{i}")
        try:
            normalize_request(request, spec, model_name)
        except TritonLiteError as exc:
            raise InvalidArgumentError(f"model '{model_name}' warmup sample '{sample.name}': {exc.message}") from None
        request.backend_inputs.update((n, a) for n, a in sample.inputs.items() if n not in spec.inputs)
        collector = _Collector(errors)
        request.sink = ResponseSink(collector)
        collectors[id(request)] = collector
        requests.append(request)
    return requests, collectors


__all__ = ["WarmupSample", "build_samples", "run_samples", "WARMUP_FOLDER"]
