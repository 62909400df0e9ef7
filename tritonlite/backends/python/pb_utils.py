"""``triton_python_backend_utils`` for in-process Python models.

Real Triton ``model.py`` files import this module under its Triton name (the loader registers it in
``sys.modules`` when a model loads) and run unchanged. It is the pb_utils surface of python_backend
(SPEC §5.3–§5.6) over numpy and tritonlite's core requests, without the shared-memory hop. The classes
live in private modules (``_types``, ``_requests``, ``_autocomplete``, ``_metrics``); this module gathers
them and adds the module-level helpers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tritonlite.backends.python._autocomplete import ModelConfig
from tritonlite.backends.python._context import current_context, require_engine
from tritonlite.backends.python._metrics import Metric, MetricFamily
from tritonlite.backends.python._requests import (
    InferenceRequest,
    InferenceResponse,
    InferenceResponseSender,
    ResponseIterator,
)
from tritonlite.backends.python._types import (
    TRITON_STRING_TO_NUMPY,
    TRITONSERVER_MEMORY_CPU,
    TRITONSERVER_MEMORY_GPU,
    TRITONSERVER_REQUEST_FLAG_SEQUENCE_END,
    TRITONSERVER_REQUEST_FLAG_SEQUENCE_START,
    TRITONSERVER_REQUEST_RELEASE_ALL,
    TRITONSERVER_REQUEST_RELEASE_RESCHEDULE,
    TRITONSERVER_RESPONSE_COMPLETE_FINAL,
    InferenceTrace,
    Logger,
    PreferredMemory,
    Tensor,
    TritonError,
    TritonModelException,
    as_text,
    numpy_to_triton_type,
    triton_string_to_numpy,
    triton_to_numpy_type,
)
from tritonlite.datatypes import deserialize_bytes_tensor as _deserialize
from tritonlite.datatypes import serialize_bytes_tensor as _serialize
from tritonlite.errors import TritonLiteError


def get_input_tensor_by_name(inference_request: InferenceRequest, name: str) -> Tensor | None:
    for tensor in inference_request.inputs():
        if tensor.name() == name:
            return tensor
    return None


def get_output_tensor_by_name(inference_response: InferenceResponse, name: str) -> Tensor | None:
    for tensor in inference_response.output_tensors():
        if tensor.name() == name:
            return tensor
    return None


def get_input_config_by_name(model_config: dict, name: str) -> dict | None:
    for entry in model_config.get("input", ()):
        if entry["name"] == name:
            return entry
    return None


def get_output_config_by_name(model_config: dict, name: str) -> dict | None:
    for entry in model_config.get("output", ()):
        if entry["name"] == name:
            return entry
    return None


def using_decoupled_model_transaction_policy(model_config: dict) -> bool:
    return bool(model_config.get("model_transaction_policy", {}).get("decoupled", False))


def serialize_byte_tensor(input_tensor: np.ndarray) -> bytes:
    """Length-prefixed (uint32 LE) elements, row-major; non-bytes elements are str()-ed to UTF-8."""
    return _serialize(np.asarray(input_tensor, dtype=np.object_))


def deserialize_bytes_tensor(encoded_tensor: Any) -> np.ndarray:
    if isinstance(encoded_tensor, np.ndarray):
        encoded_tensor = encoded_tensor.tobytes()
    return _deserialize(encoded_tensor)


def get_model_dir() -> str:
    """The directory of the running model (``<repository>/<model>``)."""
    ctx = current_context()
    if ctx is None:
        raise TritonModelException("get_model_dir() is only available inside a model")
    return ctx.model_dir


def load_model(model_name: str | bytes, config: str | bytes = "", files: dict[str, bytes] | None = None) -> None:
    kwargs: dict[str, Any] = {}
    config = as_text(config, "config")
    if config:
        kwargs["config"] = config
    if files:
        kwargs["files"] = {as_text(k, "files key"): v for k, v in files.items()}
    _call_engine("load_model", as_text(model_name, "model_name"), **kwargs)


def unload_model(model_name: str | bytes, unload_dependents: bool = False) -> None:
    _call_engine("unload_model", as_text(model_name, "model_name"), unload_dependents=unload_dependents)


def is_model_ready(model_name: str | bytes, model_version: str | bytes = "") -> bool:
    version = model_version if isinstance(model_version, int) else as_text(model_version, "model_version")
    return bool(_call_engine("is_model_ready", as_text(model_name, "model_name"), str(version)))


def _call_engine(method: str, *args: Any, **kwargs: Any) -> Any:
    engine = require_engine(method)
    try:
        return getattr(engine, method)(*args, **kwargs)
    except TritonLiteError as exc:
        raise TritonModelException(str(exc)) from exc


__all__ = [
    "InferenceRequest", "InferenceResponse", "InferenceResponseSender", "InferenceTrace", "Logger", "Metric",
    "MetricFamily", "ModelConfig", "PreferredMemory", "ResponseIterator", "Tensor", "TritonError", "TritonModelException",
    "TRITON_STRING_TO_NUMPY", "TRITONSERVER_MEMORY_CPU", "TRITONSERVER_MEMORY_GPU",
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_END", "TRITONSERVER_REQUEST_FLAG_SEQUENCE_START",
    "TRITONSERVER_REQUEST_RELEASE_ALL", "TRITONSERVER_REQUEST_RELEASE_RESCHEDULE",
    "TRITONSERVER_RESPONSE_COMPLETE_FINAL", "deserialize_bytes_tensor", "get_input_config_by_name",
    "get_input_tensor_by_name", "get_model_dir", "get_output_config_by_name", "get_output_tensor_by_name",
    "is_model_ready", "load_model", "numpy_to_triton_type", "serialize_byte_tensor", "triton_string_to_numpy",
    "triton_to_numpy_type", "unload_model", "using_decoupled_model_transaction_policy",
]
