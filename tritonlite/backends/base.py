"""What a backend is: a lifecycle protocol, nothing more.

A backend turns a model's files into instances; an instance executes batches of requests.
Framework backends only map named arrays to named arrays (see :mod:`tritonlite.backends.batching`);
the Python backend receives the request list itself, as Triton's python backend does.
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
