"""Request-level parameters of the sequence, schedule-policy and parameters extensions (SPEC §2.7–2.9).

:func:`request_options` turns a decoded ``{key: value}`` map (HTTP JSON values, or gRPC
``InferParameter`` values already unwrapped to Python scalars) into the keyword fields of
:class:`tritonlite.request.InferenceRequest` plus the custom parameters the backend sees.
"""

from __future__ import annotations

from typing import Any, Mapping

from tritonlite.errors import InvalidArgumentError
from tritonlite.request import RequestFlag

#: keys the protocol reserves; never forwarded to the backend
RESERVED_KEYS = frozenset(
    {"sequence_id", "sequence_start", "sequence_end", "priority", "timeout", "headers", "binary_data_output"}
)
MAX_STRING_SEQUENCE_ID = 128


def _uint(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"Unable to parse '{key}': expected an unsigned integer, got {value!r}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"Unable to parse '{key}': expected a boolean, got {value!r}")
    return value


def request_options(params: Mapping[str, Any] | None, *, allowed_triton_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Split request parameters into ``InferenceRequest`` fields.

    Returns ``{"correlation_id", "flags", "priority", "timeout_us", "parameters"}``; ``parameters``
    holds the custom (non-reserved) keys. Keys starting with ``triton_`` are refused unless listed in
    ``allowed_triton_keys`` (they are then kept out of ``parameters`` too).
    """
    out: dict[str, Any] = {"correlation_id": 0, "flags": 0, "priority": 0, "timeout_us": 0, "parameters": {}}
    if not params:
        return out
    if not isinstance(params, Mapping):
        raise InvalidArgumentError("Unable to parse 'parameters': expected a JSON object")
    custom: dict[str, Any] = {}
    flags = 0
    for key, value in params.items():
        if key == "sequence_id":
            if isinstance(value, str):
                if len(value) > MAX_STRING_SEQUENCE_ID:
                    raise InvalidArgumentError(
                        f"sequence ID string length must be <= {MAX_STRING_SEQUENCE_ID} characters, got {len(value)}"
                    )
                out["correlation_id"] = value
            else:
                out["correlation_id"] = _uint(key, value)
        elif key == "sequence_start":
            if _bool(key, value):
                flags |= RequestFlag.SEQUENCE_START
        elif key == "sequence_end":
            if _bool(key, value):
                flags |= RequestFlag.SEQUENCE_END
        elif key == "priority":
            out["priority"] = _uint(key, value)
        elif key == "timeout":
            out["timeout_us"] = _uint(key, value)
        elif key in RESERVED_KEYS:
            continue
        elif key.startswith("triton_"):
            if key not in allowed_triton_keys:
                raise InvalidArgumentError(
                    f"parameter keys starting with 'triton_' are reserved for Triton usage and should not be specified: '{key}'"
                )
        else:
            if value is None or not isinstance(value, (str, int, float, bool)):
                raise InvalidArgumentError(
                    f"parameter '{key}' has an unsupported type: expected a string, integer, boolean or number"
                )
            custom[key] = value
    out["flags"] = int(flags)
    out["parameters"] = custom
    return out


__all__ = ["request_options", "RESERVED_KEYS"]
