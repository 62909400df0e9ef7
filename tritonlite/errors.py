"""One exception root carrying Triton's error codes.

Every layer raises these; only the doors (HTTP, gRPC, C, Java) translate the code into a status.
Each subclass also inherits the builtin it resembles, so ``except ValueError`` keeps working for
callers that do not know tritonlite.

    TritonLiteError(code, message)
    ├── UnknownError
    ├── InternalError          (RuntimeError)
    ├── NotFoundError          (LookupError)
    ├── InvalidArgumentError   (ValueError)
    ├── UnavailableError       (RuntimeError)
    ├── UnsupportedError       (NotImplementedError)
    ├── AlreadyExistsError
    └── CancelledError
"""

from __future__ import annotations

import enum


class ErrorCode(enum.IntEnum):
    """TRITONSERVER_Error_Code values (same numbers as Triton's C API and pb_utils.TritonError)."""

    UNKNOWN = 0
    INTERNAL = 1
    NOT_FOUND = 2
    INVALID_ARG = 3
    UNAVAILABLE = 4
    UNSUPPORTED = 5
    ALREADY_EXISTS = 6
    CANCELLED = 7


class TritonLiteError(Exception):
    """Root of every error tritonlite raises; ``code`` is an :class:`ErrorCode`."""

    code: ErrorCode = ErrorCode.UNKNOWN

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = ErrorCode(code)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class UnknownError(TritonLiteError):
    """An error with no better class (Triton's ``Unknown``): e.g. a model raised an exception tritonlite cannot classify."""

    code = ErrorCode.UNKNOWN


class InternalError(TritonLiteError, RuntimeError):
    """Something failed inside tritonlite or a backend (``Internal``): a model crashed, a load failed, a bug."""

    code = ErrorCode.INTERNAL


class NotFoundError(TritonLiteError, LookupError):
    """The named model, version, region or sequence does not exist (``Not found``; HTTP 404, gRPC NOT_FOUND)."""

    code = ErrorCode.NOT_FOUND


class InvalidArgumentError(TritonLiteError, ValueError):
    """The request or config is wrong: shape, datatype, missing input, bad parameter (``Invalid argument``; HTTP 400)."""

    code = ErrorCode.INVALID_ARG


class UnavailableError(TritonLiteError, RuntimeError):
    """The thing exists but cannot serve now: not ready, queue full, engine closing (``Unavailable``; HTTP 503)."""

    code = ErrorCode.UNAVAILABLE


class UnsupportedError(TritonLiteError, NotImplementedError):
    """A valid request for a feature tritonlite or this model does not offer (``Unsupported``)."""

    code = ErrorCode.UNSUPPORTED


class AlreadyExistsError(TritonLiteError):
    """A name is already taken, e.g. a shared-memory region registered twice (``Already exists``)."""

    code = ErrorCode.ALREADY_EXISTS


class CancelledError(TritonLiteError):
    """The request was cancelled by its caller or timed out in the queue (``Cancelled``)."""

    code = ErrorCode.CANCELLED


_BY_CODE: dict[ErrorCode, type[TritonLiteError]] = {
    ErrorCode.UNKNOWN: UnknownError,
    ErrorCode.INTERNAL: InternalError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.INVALID_ARG: InvalidArgumentError,
    ErrorCode.UNAVAILABLE: UnavailableError,
    ErrorCode.UNSUPPORTED: UnsupportedError,
    ErrorCode.ALREADY_EXISTS: AlreadyExistsError,
    ErrorCode.CANCELLED: CancelledError,
}


def error_from_code(code: int, message: str) -> TritonLiteError:
    """Build the subclass that matches ``code`` (used where codes cross a boundary, e.g. pb_utils)."""
    try:
        cls = _BY_CODE[ErrorCode(code)]
    except ValueError:
        cls = UnknownError
    return cls(message)


__all__ = [
    "ErrorCode",
    "TritonLiteError",
    "UnknownError",
    "InternalError",
    "NotFoundError",
    "InvalidArgumentError",
    "UnavailableError",
    "UnsupportedError",
    "AlreadyExistsError",
    "CancelledError",
    "error_from_code",
]
