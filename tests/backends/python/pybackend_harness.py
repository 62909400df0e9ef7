"""Helpers for the Python backend tests: config → LoadContext → instance → core requests."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tritonlite.backends.base import LoadContext
from tritonlite.backends.python import PythonBackend
from tritonlite.config import instance_names, load_config_file, normalize
from tritonlite.request import InferenceRequest, InferResult, ResponseSink

MODELS = Path(__file__).parent / "models"


class Collector:
    """A ResponseSink callback that records (result, error, final) and signals the final one."""

    def __init__(self) -> None:
        self.items: list[tuple[InferResult | None, Any, bool]] = []
        self.done = threading.Event()

    def __call__(self, result: InferResult | None, error: Any, final: bool, *reason: str) -> None:
        self.items.append((result, error, final))
        if final:
            self.done.set()

    def wait(self, timeout: float = 5.0) -> list[tuple[InferResult | None, Any, bool]]:
        assert self.done.wait(timeout), "no final response"
        return self.items


def make_context(name: str, *, engine: Any = None, auto_complete: bool = False, backend: PythonBackend | None = None) -> LoadContext:
    model_dir = MODELS / name
    cfg = load_config_file(model_dir / "config.pbtxt")
    ctx = LoadContext(
        model_name=name, model_version=1, config=cfg, model_dir=model_dir, version_dir=model_dir / "1",
        model_path=model_dir / "1" / "model.py", engine=engine,
    )
    if auto_complete:
        (backend or PythonBackend()).auto_complete_config(ctx)
    normalize(cfg, model_name=name)
    inst = instance_names(cfg)[0]
    ctx.instance_name, ctx.instance_kind, ctx.device_id = inst.name, inst.kind, inst.device_id
    return ctx


def make_request(inputs: dict[str, np.ndarray], outputs: tuple[str, ...] = (), **kwargs: Any) -> tuple[InferenceRequest, Collector]:
    collector = Collector()
    req = InferenceRequest(model_name=kwargs.pop("model_name", "m"), inputs=inputs, **kwargs)
    req.backend_inputs = dict(inputs)
    req.output_names = tuple(outputs)
    req.sink = ResponseSink(collector)
    return req, collector


@pytest.fixture
def load() -> Iterator[Any]:
    """Create instances for named models; all are closed at the end of the test."""
    made: list[Any] = []

    def _load(name: str, **kwargs: Any) -> Any:
        ctx = make_context(name, **kwargs)
        instance = PythonBackend().create_instance(ctx)
        made.append(instance)
        return instance

    yield _load
    for instance in made:
        instance.close()
