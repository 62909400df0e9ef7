"""Backends as data: a table of built-ins plus the ``tritonlite.backends`` entry-point group.

Each engine owns a :class:`BackendRegistry` (no process-global state). Lookups go by the config's
``backend`` or, failing that, by its ``platform``.
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import Any, Callable

from tritonlite.errors import InvalidArgumentError, UnavailableError

#: backend name -> "module:attribute" of a zero-argument factory (imported lazily)
BUILTIN_BACKENDS: dict[str, str] = {
    "onnxruntime": "tritonlite.backends.onnxruntime:OnnxRuntimeBackend",
    "python": "tritonlite.backends.python:PythonBackend",
    "pytorch": "tritonlite.backends.pytorch:PyTorchBackend",
    "openvino": "tritonlite.backends.openvino:OpenVINOBackend",
    "fil": "tritonlite.backends.fil:FILBackend",
    "tensorrt": "tritonlite.backends.tensorrt:TensorRTBackend",
    "ensemble": "tritonlite.backends.ensemble:EnsembleBackend",
}

#: platform string -> backend name (Triton's legacy platform names)
PLATFORMS: dict[str, str] = {
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "libtorch": "pytorch",
    "torch_aoti": "pytorch",
    "tensorrt_plan": "tensorrt",
    "tensorflow_savedmodel": "tensorflow",
    "tensorflow_graphdef": "tensorflow",
    "ensemble": "ensemble",
}

ENTRY_POINT_GROUP = "tritonlite.backends"


class BackendRegistry:
    """Resolves a config to a backend object, creating each backend once per engine."""

    def __init__(self) -> None:
        self._factories: dict[str, Callable[[], Any]] = {}
        self._instances: dict[str, Any] = {}

    def register(self, name: str, factory: Callable[[], Any]) -> None:
        """Add or replace a backend for this engine only."""
        self._factories[name] = factory
        self._instances.pop(name, None)

    @staticmethod
    def backend_name(config: Any) -> str:
        if config.backend:
            return config.backend
        if config.platform in PLATFORMS:
            return PLATFORMS[config.platform]
        if config.platform:
            return config.platform
        raise InvalidArgumentError(f"model '{config.name}' must specify 'platform' or 'backend'")

    def get(self, name: str) -> Any:
        backend = self._instances.get(name)
        if backend is not None:
            return backend
        factory = self._factories.get(name) or self._builtin(name) or self._entry_point(name)
        if factory is None:
            raise UnavailableError(
                f"unable to find backend '{name}': not built in ({', '.join(sorted(BUILTIN_BACKENDS))}) "
                f"and no '{ENTRY_POINT_GROUP}' entry point provides it"
            )
        backend = self._instances[name] = factory()
        return backend

    @staticmethod
    def _builtin(name: str) -> Callable[[], Any] | None:
        spec = BUILTIN_BACKENDS.get(name)
        if spec is None:
            return None
        module, attr = spec.split(":")
        return getattr(importlib.import_module(module), attr)

    @staticmethod
    def _entry_point(name: str) -> Callable[[], Any] | None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name == name:
                return ep.load()
        return None


__all__ = ["BackendRegistry", "BUILTIN_BACKENDS", "PLATFORMS", "ENTRY_POINT_GROUP"]
