"""``inference.GRPCInferenceService`` on Serve's gRPC proxy, so ``tritonclient.grpc`` works against its port.

Serve's gRPC proxy serves user services registered by ``add_*_to_server`` functions named in
``gRPCOptions.grpc_servicer_functions``; it routes ``/<service>/<Method>`` to the ingress method
named ``Method``. The proxy deserializes each request with the registered deserializer and pickles
it to the ingress; tritonlite's generated messages live in a private descriptor pool (so
tritonclient's own ``service_pb2`` can be imported beside them) and do not pickle. So
:func:`add_inference_service` registers every RPC with no (de)serializer: requests reach the
ingress as the wire bytes, which it forwards as they are, and responses go back as bytes
(:class:`RawMessage`). Only the ingress reads a field or two, to route.

    serve.start(grpc_options={"port": 9000, "grpc_servicer_functions": [GRPC_SERVICER_FUNCTION]})
"""

from __future__ import annotations

from typing import Any

import grpc

from tritonlite.protos import grpc_service_pb2 as pb

SERVICE = "inference.GRPCInferenceService"
GRPC_SERVICER_FUNCTION = "tritonlite.ray.grpc_proxy:add_inference_service"


def rpc_methods() -> dict[str, bool]:
    """``{method name: bidirectional streaming?}`` for every RPC the service declares."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    return {m.name: bool(m.client_streaming and m.server_streaming) for m in service.methods}


def add_inference_service(servicer: Any, server: Any) -> None:
    """Register ``inference.GRPCInferenceService`` on ``server`` with bytes in and bytes out.

    Serve calls this with a stand-in servicer and replaces each behaviour with its proxy handler;
    a plain ``grpc.Server`` would call ``servicer.<Method>(request_bytes, context)``.
    """
    handlers = {}
    for name, bidi in rpc_methods().items():
        behaviour = getattr(servicer, name)
        handlers[name] = (grpc.stream_stream_rpc_method_handler(behaviour) if bidi
                          else grpc.unary_unary_rpc_method_handler(behaviour))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    if hasattr(server, "add_registered_method_handlers"):
        server.add_registered_method_handlers(SERVICE, handlers)


class RawMessage:
    """A response already serialized: Serve calls ``SerializeToString()`` on what a gRPC method returns."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:  # noqa: N802 - protobuf's name
        return self.data


def infer_sequence(request: bytes) -> tuple[Any, bool]:
    """(``sequence_id``, ``sequence_end``) of a serialized ``ModelInferRequest``; (None, False) if none."""
    if b"sequence_id" not in request:
        return None, False
    try:
        params = pb.ModelInferRequest.FromString(request).parameters
    except Exception:  # noqa: BLE001 - the replica answers a malformed request with INVALID_ARGUMENT
        return None, False
    seq = params.get("sequence_id")
    if seq is None:
        return None, False
    kind = seq.WhichOneof("parameter_choice")
    value = seq.string_param if kind == "string_param" else seq.int64_param if kind == "int64_param" else \
        seq.uint64_param if kind == "uint64_param" else None
    end = params.get("sequence_end")
    return value, bool(end is not None and end.WhichOneof("parameter_choice") == "bool_param" and end.bool_param)


def statistics_target(request: bytes) -> tuple[str, str]:
    """(model name, version) of a serialized ``ModelStatisticsRequest`` (empty: every model)."""
    try:
        parsed = pb.ModelStatisticsRequest.FromString(request)
    except Exception:  # noqa: BLE001 - a replica answers it with INVALID_ARGUMENT
        return "", ""
    return parsed.name, parsed.version


def statistics_response(stats: dict[str, Any]) -> bytes:
    """A serialized ``ModelStatisticsResponse`` of Triton's statistics JSON (the gRPC door's mapping)."""
    from google.protobuf import json_format

    resp = pb.ModelStatisticsResponse()
    json_format.ParseDict(stats, resp, ignore_unknown_fields=True)
    return resp.SerializeToString()


def control_model_name(method: str, request: bytes) -> str | None:
    """The model a ``RepositoryModelLoad``/``Unload`` request names (None: unparsable)."""
    cls = pb.RepositoryModelLoadRequest if method == "RepositoryModelLoad" else pb.RepositoryModelUnloadRequest
    try:
        return cls.FromString(request).model_name
    except Exception:  # noqa: BLE001
        return None


__all__ = ["GRPC_SERVICER_FUNCTION", "RawMessage", "SERVICE", "add_inference_service", "control_model_name",
           "infer_sequence", "rpc_methods", "statistics_response", "statistics_target"]
