"""Logging and trace settings (SPEC §2.10–2.11), shared by the HTTP and gRPC doors of one engine.

tritonlite keeps these as settings with Triton's keys, defaults and validation so clients can
read and update them (``/v2/logging``, ``/v2/trace/setting``, gRPC ``LogSettings``/``TraceSetting``).
They configure nothing process-global.
"""

from __future__ import annotations

import copy
import threading
import weakref
from typing import Any, Mapping

from tritonlite.errors import InvalidArgumentError, UnavailableError, UnsupportedError

LOG_DEFAULTS: dict[str, Any] = {
    "log_file": "",
    "log_info": True,
    "log_warning": True,
    "log_error": True,
    "log_verbose_level": 0,
    "log_format": "default",
}
TRACE_DEFAULTS: dict[str, Any] = {
    "trace_level": ["OFF"],
    "trace_rate": "1000",
    "trace_count": "-1",
    "log_frequency": "0",
    "trace_file": "",
    "trace_mode": "triton",
}
_TRACE_LEVELS = ("OFF", "TIMESTAMPS", "TENSORS")


class ServerSettings:
    """Logging settings and global + per-model trace settings (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log = dict(LOG_DEFAULTS)
        self._trace = copy.deepcopy(TRACE_DEFAULTS)
        self._model_trace: dict[str, dict[str, Any]] = {}

    # ---- logging --------------------------------------------------------------------------------------
    def log_settings(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._log)

    def update_log_settings(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a partial update (null values ignored) and return the full settings."""
        if not isinstance(values, Mapping):
            raise InvalidArgumentError("log settings must be a JSON object")
        new: dict[str, Any] = {}
        for key, value in values.items():
            if value is None:
                continue
            if key == "log_file":
                raise UnsupportedError("log file location can not be updated through network protocol")
            if key in ("log_info", "log_warning", "log_error"):
                if not isinstance(value, bool):
                    raise InvalidArgumentError(f"expect boolean for '{key}'")
                new[key] = value
            elif key == "log_verbose_level":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise InvalidArgumentError("expect unsigned integer for 'log_verbose_level'")
                new[key] = value
            elif key == "log_format":
                if not isinstance(value, str):
                    raise InvalidArgumentError("expect string for 'log_format'")
                if value not in ("default", "ISO8601"):
                    raise UnavailableError(
                        f"invalid argument for --log_format, got: {value}. Choices are: [default, ISO8601]"
                    )
                new[key] = value
            else:
                raise InvalidArgumentError(f"unknown logging setting '{key}'")
        with self._lock:
            self._log.update(new)
            return dict(self._log)

    # ---- trace ----------------------------------------------------------------------------------------
    def trace_settings(self, model: str = "") -> dict[str, Any]:
        with self._lock:
            out = copy.deepcopy(self._trace)
            if model:
                out.update(copy.deepcopy(self._model_trace.get(model, {})))
            return out

    def update_trace_settings(self, values: Mapping[str, Any], model: str = "") -> dict[str, Any]:
        """Apply a partial update; a null (or, from gRPC, an empty list) clears the key back to the
        global value (per model) or the default (global). Values are strings, ``trace_level`` a list."""
        if not isinstance(values, Mapping):
            raise InvalidArgumentError("trace settings must be a JSON object")
        updates: dict[str, Any] = {}
        for key, value in values.items():
            if value is None or (isinstance(value, list) and not value and key != "trace_level"):
                updates[key] = None
                continue
            if key == "trace_file":
                raise UnsupportedError("trace file location can not be updated through network protocol")
            if key == "trace_level":
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise InvalidArgumentError("expect an array of strings for 'trace_level'")
                if not value:
                    updates[key] = None
                    continue
                for v in value:
                    if v not in _TRACE_LEVELS:
                        raise InvalidArgumentError(f"invalid trace level '{v}': expected one of {list(_TRACE_LEVELS)}")
                if "OFF" in value and len(value) > 1:
                    raise InvalidArgumentError("trace level 'OFF' cannot be specified with other trace levels")
                updates[key] = list(dict.fromkeys(value))
                continue
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if not isinstance(value, str):
                raise InvalidArgumentError(f"Unable to parse '{key}': expect a string value")
            if key in ("trace_rate", "log_frequency"):
                if not value.isdigit():
                    raise InvalidArgumentError(f"Unable to parse '{key}': expect an unsigned integer, got '{value}'")
                updates[key] = str(int(value))
            elif key == "trace_count":
                try:
                    n = int(value)
                except ValueError:
                    raise InvalidArgumentError(f"Unable to parse 'trace_count': expect an integer, got '{value}'") from None
                if n < -1:
                    raise InvalidArgumentError("Unable to parse 'trace_count': the value must be >= -1")
                updates[key] = str(n)
            elif key == "trace_mode":
                raise InvalidArgumentError("trace mode can not be updated through network protocol")
            else:
                raise InvalidArgumentError(f"unknown trace setting '{key}'")
        with self._lock:
            target = self._model_trace.setdefault(model, {}) if model else self._trace
            for key, value in updates.items():
                if value is None:
                    if model:
                        target.pop(key, None)
                    elif key in TRACE_DEFAULTS:
                        target[key] = copy.deepcopy(TRACE_DEFAULTS[key])
                else:
                    target[key] = value
        return self.trace_settings(model)


_SETTINGS: "weakref.WeakKeyDictionary[Any, ServerSettings]" = weakref.WeakKeyDictionary()
_SETTINGS_LOCK = threading.Lock()


def settings_for(engine: Any) -> ServerSettings:
    """The logging/trace settings of ``engine`` (one object shared by its HTTP and gRPC doors)."""
    with _SETTINGS_LOCK:
        s = _SETTINGS.get(engine)
        if s is None:
            s = _SETTINGS[engine] = ServerSettings()
        return s


__all__ = ["ServerSettings", "settings_for", "LOG_DEFAULTS", "TRACE_DEFAULTS"]
