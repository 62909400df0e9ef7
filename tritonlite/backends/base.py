"""What a backend is: a lifecycle protocol, nothing more.

A backend turns a model's files into instances; an instance executes batches of requests.
Framework backends only map named arrays to named arrays (see :mod:`tritonlite.backends.batching`);
the Python backend receives the request list itself, as Triton's python backend does.

Backend API (for built-in and third-party backends alike)
=========================================================

Finding a backend. A config names ``backend: "<name>"`` (or a ``platform`` that maps to one, e.g.
``pytorch_libtorch`` -> ``pytorch``). Each engine resolves the name once, in this order: backends passed
to ``InferenceEngine(..., backends={"<name>": factory})``; the built-in table
(:data:`tritonlite.backends.registry.BUILTIN_BACKENDS`: onnxruntime, python, pytorch, openvino, fil,
tensorrt, ensemble); the ``tritonlite.backends`` entry-point group of installed distributions::

    # a third-party package's pyproject.toml
    [project.entry-points."tritonlite.backends"]
    my_backend = "my_package:MyBackend"

The value is a zero-argument factory; the engine calls it once and keeps the backend object for its
lifetime (two engines never share one). ``examples/custom_backend/`` is a complete installable example.

The lifecycle, per model version:

1. ``backend.auto_complete_config(ctx)`` — optional; called before normalisation unless the engine runs
   with ``strict_model_config=True``. It may fill ``ctx.config`` (a protobuf ``ModelConfig``): inputs,
   outputs, ``max_batch_size``, ``dynamic_batching``, ``default_model_filename``. ``ctx.engine`` is set;
   ``ctx.instance_*`` are not.
2. ``backend.create_instance(ctx)`` — once per instance that ``instance_group`` asks for (a KIND_GPU
   group: once per listed GPU). ``ctx.model_path`` is ``<version dir>/<default_model_filename>``;
   ``ctx.instance_name`` (``<group>_<k>``), ``ctx.instance_kind`` (``"CPU"``, ``"GPU"``, ``"MODEL"``) and
   ``ctx.device_id`` say where the instance runs. Import the framework here (not at module import), and
   raise :class:`~tritonlite.errors.UnavailableError` naming the extra to install when it is missing,
   :class:`~tritonlite.errors.InvalidArgumentError` for a bad model file or config. Any exception makes
   the version UNAVAILABLE with its message as the reason; other models keep serving.
3. ``instance.execute(requests)`` — from the instance's own worker thread (or the caller's thread for a
   blocking ``infer`` on an idle instance), never concurrently on one instance. ``requests`` are
   validated :class:`~tritonlite.request.InferenceRequest` objects (``backend_inputs``, ``output_names``,
   ``batch_size``); return one :class:`~tritonlite.request.InferResult` per request, in order, or
   ``None`` after sending every response through ``request.sink`` (decoupled models). Raising fails
   the whole batch with the exception's message; the instance keeps serving.
4. ``instance.close()`` — on unload or engine close; release framework resources (device memory,
   sessions). Errors are logged, never raised into the unload.

Framework backends derive their instance from :class:`tritonlite.backends.batching.FrameworkInstance`
and implement only ``run(feeds, output_names) -> {name: ndarray}``: the requests of a batch arrive
concatenated along dimension 0 (when ``max_batch_size > 0``) and the outputs are split back per
request. ``default_cpu_instance_count`` (attribute, default 1) sets the instance count of a CPU group
that gives none. Process-global framework settings (torch's thread pools) cannot be per engine: such a
backend documents it and applies the first model's setting, as Triton's backends do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

from tritonlite.config import ModelConfig
from tritonlite.request import InferenceRequest, InferResult


@dataclass
class LoadContext:
    """Everything a backend may look at while loading one version of a model."""

    model_name: str
    model_version: int
    config: ModelConfig
    model_dir: Path
    version_dir: Path
    model_path: Path
    #: the engine, for backends that call back into it (BLS); None in auto-complete
    engine: Any = None
    #: instance-level facts, filled for create_instance
    instance_name: str = ""
    instance_kind: str = "CPU"
    device_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class BackendInstance(Protocol):
    """One model instance; the scheduler calls ``execute`` from the instance's own thread.

    ``execute`` returns one :class:`InferResult` per request (in order), or ``None`` when the
    backend sent responses itself through ``request.sink`` (decoupled models).
    Raising fails every request of the batch with the exception's message.
    """

    def execute(self, requests: Sequence[InferenceRequest]) -> Sequence[InferResult] | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """A backend: registered by name; ``create_instance`` is required, the rest optional."""

    name: str

    def create_instance(self, ctx: LoadContext) -> BackendInstance: ...


def default_cpu_instance_count(backend: object) -> int:
    """Triton gives onnxruntime/tensorflow CPU groups 2 instances by default, others 1."""
    return int(getattr(backend, "default_cpu_instance_count", 1))


__all__ = ["Backend", "BackendInstance", "LoadContext", "default_cpu_instance_count"]
