"""Wire-protocol pieces shared by the HTTP and gRPC doors (no web framework imported here).

What a door imports:

- ``tritonlite.protocol.status``: ``http_status(err)``, ``grpc_status_name(err)`` (a ``grpc.StatusCode``
  member name), ``grpc_status_value(err)`` — from a ``TritonLiteError`` or an ``ErrorCode``.
- ``tritonlite.protocol.tensors``: ``from_raw(datatype, shape, buffer, name=, model=)`` (zero-copy for
  fixed-size types; BYTES length-prefixed; BF16 as uint16), ``to_raw(array)`` (bytes or memoryview),
  ``datatype_of(array, declared)``, ``byte_size(datatype, shape)``, ``element_count(shape)``.
- ``tritonlite.protocol.classification``: ``classify(array, k, labels, batching)`` → BYTES object array
  of ``"value:index[:label]"``; ``load_labels(path)``.
- ``tritonlite.protocol.shm``: ``registry_for(engine)`` → ``SharedMemoryRegistry`` (``register_system``,
  ``system_status``, ``unregister_system``, ``register_cuda``, ``cuda_status``, ``unregister_cuda``,
  ``read``, ``write``, ``close``); tensor helpers ``shm_target(params)`` → ``ShmTarget | None``,
  ``input_from_params(registry, target, datatype, shape, name=, model=)``,
  ``write_output(registry, target, name, array)``; ``release_registry(engine)``.
- ``tritonlite.protocol.params``: ``request_options(params, allowed_triton_keys=...)`` → the
  ``InferenceRequest`` fields ``correlation_id``, ``flags``, ``priority``, ``timeout_us`` and the custom
  ``parameters`` (sequence / schedule-policy / parameters extensions).
- ``tritonlite.protocol.models``: ``ModelInfo`` per loaded model version (declared output datatypes,
  labels, ``max_batch_size``, ``decoupled``) via ``model_info(engine, name, version)``;
  ``prepare_output(info, name, array, class_count=, shm=, registry=)`` → (datatype, shape, array|None)
  applies classification and shared-memory placement to one output.
- ``tritonlite.protocol.settings``: ``settings_for(engine)`` → ``ServerSettings`` — the logging and trace setting dicts with
  Triton's validation (HTTP ``/v2/logging``, ``/v2/trace/setting``; gRPC ``LogSettings``, ``TraceSetting``).
- here: ``server_metadata(engine)`` — ``{"name", "version", "extensions"}`` with the extensions both doors
  implement, in Triton's order.
"""

from typing import Any

from tritonlite.protocol.status import grpc_status_name, grpc_status_value, http_status

#: extensions the doors implement on top of the engine's, in the order Triton lists them
SERVER_EXTENSIONS = (
    "classification",
    "sequence",
    "model_repository",
    "model_repository(unload_dependents)",
    "schedule_policy",
    "model_configuration",
    "system_shared_memory",
    "cuda_shared_memory",
    "binary_tensor_data",
    "parameters",
    "statistics",
    "trace",
    "logging",
)


def server_metadata(engine: Any) -> dict[str, Any]:
    """Server metadata as Triton reports it: the engine's name and version, the doors' extensions."""
    meta = engine.server_metadata()
    extensions = list(SERVER_EXTENSIONS)
    for ext in meta.get("extensions", ()):
        if ext not in extensions:
            extensions.append(ext)
    return {"name": meta["name"], "version": meta["version"], "extensions": extensions}


__all__ = ["http_status", "grpc_status_name", "grpc_status_value", "server_metadata", "SERVER_EXTENSIONS"]
