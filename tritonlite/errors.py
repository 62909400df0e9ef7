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
    code = ErrorCode.UNKNOWN


class InternalError(TritonLiteError, RuntimeError):
    code = ErrorCode.INTERNAL


class NotFoundError(TritonLiteError, LookupError):
    code = ErrorCode.NOT_FOUND


class InvalidArgumentError(TritonLiteError, ValueError):
    code = ErrorCode.INVALID_ARG


class UnavailableError(TritonLiteError, RuntimeError):
    code = ErrorCode.UNAVAILABLE


class UnsupportedError(TritonLiteError, NotImplementedError):
    code = ErrorCode.UNSUPPORTED


class AlreadyExistsError(TritonLiteError):
    code = ErrorCode.ALREADY_EXISTS


class CancelledError(TritonLiteError):
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
