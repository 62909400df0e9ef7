"""Error code → wire status: HTTP (SPEC §1.6) and gRPC (SPEC §3.4).

Only the doors import this; the engine raises :class:`~tritonlite.errors.TritonLiteError` with a
Triton :class:`~tritonlite.errors.ErrorCode` and never knows about either protocol.
"""

from __future__ import annotations

from tritonlite.errors import ErrorCode, TritonLiteError

_HTTP: dict[ErrorCode, int] = {
    ErrorCode.UNKNOWN: 400,
    ErrorCode.INTERNAL: 500,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_ARG: 400,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.UNSUPPORTED: 501,
    ErrorCode.ALREADY_EXISTS: 400,
    ErrorCode.CANCELLED: 400,
}

#: names of ``grpc.StatusCode`` members (use ``grpc.StatusCode[name]``), with their numeric values
_GRPC: dict[ErrorCode, tuple[str, int]] = {
    ErrorCode.UNKNOWN: ("UNKNOWN", 2),
    ErrorCode.INTERNAL: ("INTERNAL", 13),
    ErrorCode.NOT_FOUND: ("NOT_FOUND", 5),
    ErrorCode.INVALID_ARG: ("INVALID_ARGUMENT", 3),
    ErrorCode.UNAVAILABLE: ("UNAVAILABLE", 14),
    ErrorCode.UNSUPPORTED: ("UNIMPLEMENTED", 12),
    ErrorCode.ALREADY_EXISTS: ("ALREADY_EXISTS", 6),
    ErrorCode.CANCELLED: ("CANCELLED", 1),
}


def _code(error: TritonLiteError | ErrorCode | int) -> ErrorCode:
    if isinstance(error, TritonLiteError):
        return ErrorCode(error.code)
    try:
        return ErrorCode(int(error))
    except ValueError:
        return ErrorCode.UNKNOWN


def http_status(error: TritonLiteError | ErrorCode | int) -> int:
    """HTTP status for a Triton error (``HttpCodeFromError``): 400/404/500/501/503."""
    return _HTTP[_code(error)]


def grpc_status_name(error: TritonLiteError | ErrorCode | int) -> str:
    """``grpc.StatusCode`` member name for a Triton error (``GrpcStatusUtil::CodeToStatus``)."""
    return _GRPC[_code(error)][0]


def grpc_status_value(error: TritonLiteError | ErrorCode | int) -> int:
    """Numeric gRPC status code (e.g. 3 for INVALID_ARGUMENT)."""
    return _GRPC[_code(error)][1]


__all__ = ["http_status", "grpc_status_name", "grpc_status_value"]
