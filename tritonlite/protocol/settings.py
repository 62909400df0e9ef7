"""Logging and trace settings (SPEC §2.10–2.11), shared by the HTTP and gRPC doors of one engine.

tritonlite keeps these as settings with Triton's keys, defaults and validation so clients can
read and update them (``/v2/logging``, ``/v2/trace/setting``, gRPC ``LogSettings``/``TraceSetting``).
Trace settings are the engine's tracer's (they take effect); nothing here is process-global.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Mapping

from tritonlite.errors import InvalidArgumentError, UnavailableError, UnsupportedError
from tritonlite.tracing.settings import TRACE_DEFAULTS, TraceSettings

LOG_DEFAULTS: dict[str, Any] = {
    "log_file": "",
    "log_info": True,
    "log_warning": True,
    "log_error": True,
    "log_verbose_level": 0,
    "log_format": "default",
}
class ServerSettings:
    """Logging settings, and the engine's trace settings (thread-safe).

    Trace settings are the engine's own (:class:`tritonlite.tracing.TraceSettings`, which makes them
    real); a ServerSettings made without one keeps a private copy.
    """

    def __init__(self, trace: TraceSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._log = dict(LOG_DEFAULTS)
        self._trace = trace if trace is not None else TraceSettings()
        #: set in a ``--workers`` worker: repeats an update on the other workers, so every connection
        #: sees (and every worker applies) the same settings
        self.fan_out: Callable[..., Any] | None = None

    def apply_local(self, change: str, *args: Any) -> None:
        """Apply an update another worker repeated here (not repeated further)."""
        if change == "log":
            self._update_log(*args)
        elif change == "trace":
            self._trace.update_trace_settings(*args, local=False)
        else:
            raise InvalidArgumentError(f"unknown settings change '{change}'")

    # ---- logging --------------------------------------------------------------------------------------
    def log_settings(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._log)

    def start_log_settings(self, values: Mapping[str, Any]) -> None:
        """The values the server was started with (``--log-*``), which the logging API then reports."""
        with self._lock:
            self._log.update({k: v for k, v in values.items() if k in LOG_DEFAULTS})

    def update_log_settings(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a partial update (null values ignored) and return the full settings."""
        current = self._update_log(values)
        if self.fan_out is not None:
            self.fan_out("log", dict(values))
        return current

    def _update_log(self, values: Mapping[str, Any]) -> dict[str, Any]:
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
        return self._trace.trace_settings(model)

    def update_trace_settings(self, values: Mapping[str, Any], model: str = "") -> dict[str, Any]:
        """A network update: a null (or, from gRPC, an empty list) clears the key back to the global
        value (per model) or the default (global); file and mode cannot change this way."""
        current = self._trace.update_trace_settings(values, model, local=False)
        if self.fan_out is not None:
            self.fan_out("trace", dict(values), model)
        return current


_SETTINGS: "weakref.WeakKeyDictionary[Any, ServerSettings]" = weakref.WeakKeyDictionary()
_SETTINGS_LOCK = threading.Lock()


def settings_for(engine: Any) -> ServerSettings:
    """The logging/trace settings of ``engine`` (one object shared by its HTTP and gRPC doors)."""
    engine = getattr(engine, "local_engine", engine)  # a --workers worker's view shares its engine's settings
    with _SETTINGS_LOCK:
        s = _SETTINGS.get(engine)
        if s is None:
            tracer = getattr(engine, "tracer", None)
            s = _SETTINGS[engine] = ServerSettings(tracer.settings if tracer is not None else None)
        return s


__all__ = ["ServerSettings", "settings_for", "LOG_DEFAULTS", "TRACE_DEFAULTS"]
