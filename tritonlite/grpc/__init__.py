"""KServe v2 / Triton gRPC server (``inference.GRPCInferenceService``) for an :class:`~tritonlite.InferenceEngine`.

``GrpcServer(engine, host, port, allow_shm=...)`` runs in the background (a context manager);
``serve(engine_or_repository, host, port)`` blocks until SIGINT/SIGTERM. Needs ``grpcio``
(``pip install 'tritonlite[grpc]'``); the service stubs are generated into
``tritonlite.protos.grpc_service_pb2(_grpc)`` in a private descriptor pool, so the official
``tritonclient.grpc`` modules can be imported in the same process.
"""

from __future__ import annotations

try:
    import grpc as _grpc  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tritonlite.grpc needs grpcio: pip install 'tritonlite[grpc]'") from exc

from tritonlite.grpc.server import MAX_MESSAGE_BYTES, GrpcServer, serve

__all__ = ["GrpcServer", "serve", "MAX_MESSAGE_BYTES"]
