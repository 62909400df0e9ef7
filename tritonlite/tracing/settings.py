"""Trace settings with Triton's keys, defaults and validation (trace extension, ``--trace-config``).

One :class:`TraceSettings` per engine holds the global setting and per-model overrides and does the
sampling (core ``TraceSetting::SampleTrace``): every ``trace_rate``-th request of a setting is traced
while ``trace_count`` (-1 = no limit) lasts. Any update starts the setting's counters afresh, as
Triton replaces its setting objects.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable, Iterable, Mapping

from tritonlite.errors import InvalidArgumentError, UnsupportedError

TRACE_DEFAULTS: dict[str, Any] = {
    "trace_level": ["OFF"],
    "trace_rate": "1000",
    "trace_count": "-1",
    "log_frequency": "0",
    "trace_file": "",
    "trace_mode": "triton",
}
TRACE_LEVELS = ("OFF", "TIMESTAMPS", "TENSORS")
TRACE_MODES = ("triton", "opentelemetry")
#: ``--trace-config opentelemetry,<key>=<value>`` keys and Triton's defaults
OTEL_DEFAULTS: dict[str, Any] = {
    "url": "http://localhost:4318/v1/traces",
    "resource": [],
    "bsp_max_queue_size": "2048",
    "bsp_schedule_delay": "5000",
    "bsp_max_export_batch_size": "512",
}


def _validate(values: Mapping[str, Any], allow_local: bool) -> dict[str, Any]:
    """Check a partial update; ``None`` means "clear". ``allow_local`` admits file and mode (not over the network)."""
    if not isinstance(values, Mapping):
        raise InvalidArgumentError("trace settings must be a JSON object")
    updates: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or (isinstance(value, list) and not value and key != "trace_level"):
            updates[key] = None
            continue
        if key == "trace_file" and not allow_local:
            raise UnsupportedError("trace file location can not be updated through network protocol")
        if key == "trace_level":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidArgumentError("expect an array of strings for 'trace_level'")
            if not value:
                updates[key] = None
                continue
            value = [v.upper() for v in value] if allow_local else value
            for v in value:
                if v not in TRACE_LEVELS:
                    raise InvalidArgumentError(f"invalid trace level '{v}': expected one of {list(TRACE_LEVELS)}")
            if "OFF" in value and len(value) > 1:
                raise InvalidArgumentError("trace level 'OFF' cannot be specified with other trace levels")
            updates[key] = list(dict.fromkeys(value))
            continue
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, int) and not isinstance(value, bool) and allow_local:
            value = str(value)
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
            if not allow_local:
                raise InvalidArgumentError("trace mode can not be updated through network protocol")
            if value not in TRACE_MODES:
                raise InvalidArgumentError(f"invalid trace mode '{value}': expected one of {list(TRACE_MODES)}")
            updates[key] = value
        elif key == "trace_file":
            updates[key] = value
        else:
            raise InvalidArgumentError(f"unknown trace setting '{key}'")
    return updates


_CONFIG_KEYS = {"level": "trace_level", "rate": "trace_rate", "count": "trace_count", "mode": "trace_mode",
                "file": "trace_file", "log-frequency": "log_frequency", "log_frequency": "log_frequency"}


def parse_trace_config(entries: Iterable[str] | Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Triton's ``--trace-config [<mode>,]<setting>=<value>`` entries -> (trace settings, OpenTelemetry settings).

    A mapping is also accepted: ``{"level": "TIMESTAMPS", "rate": 1, "file": "/tmp/t.json",
    "opentelemetry": {"url": ...}}``. ``level`` may repeat (``TIMESTAMPS`` and ``TENSORS``).
    """
    items: list[tuple[str, str, Any]] = []
    if entries is None:
        entries = ()
    if isinstance(entries, Mapping):
        for key, value in entries.items():
            if key in TRACE_MODES and isinstance(value, Mapping):
                items.extend((key, k, v) for k, v in value.items())
            else:
                items.append(("", key, value))
    else:
        for entry in entries:
            head, sep, value = str(entry).partition("=")
            mode, comma, key = head.rpartition(",")
            if not sep or not key:
                raise InvalidArgumentError(f"--trace-config option format is '[<mode>,]<setting>=<value>', got '{entry}'")
            if comma and mode not in TRACE_MODES:
                raise InvalidArgumentError(f"invalid trace mode '{mode}' in --trace-config '{entry}': expected one of {list(TRACE_MODES)}")
            items.append((mode, key, value))
    trace: dict[str, Any] = {}
    otel: dict[str, Any] = {}
    levels: list[str] = []
    for mode, key, value in items:
        if mode == "opentelemetry":
            if key not in OTEL_DEFAULTS:
                raise InvalidArgumentError(f"unknown opentelemetry trace setting '{key}' (expected one of {list(OTEL_DEFAULTS)})")
            if key == "resource":
                otel.setdefault("resource", []).extend([value] if isinstance(value, str) else list(value))
            else:
                otel[key] = str(value)
            continue
        name = _CONFIG_KEYS.get(key)
        if name is None or (mode == "triton" and name not in ("trace_file", "log_frequency")):
            raise InvalidArgumentError(f"unknown trace setting '{key}' in --trace-config")
        if name == "trace_level":
            levels.extend([value] if isinstance(value, str) else list(value))
        else:
            trace[name] = value
    if levels:
        trace["trace_level"] = levels
    trace = _validate(trace, allow_local=True)
    for key in ("bsp_max_queue_size", "bsp_schedule_delay", "bsp_max_export_batch_size"):
        if key in otel and not otel[key].isdigit():
            raise InvalidArgumentError(f"opentelemetry setting '{key}' expects an unsigned integer, got '{otel[key]}'")
    for res in otel.get("resource", []):
        if "=" not in res:
            raise InvalidArgumentError(f"opentelemetry resource expects <key>=<value>, got '{res}'")
    return trace, otel


class _Sampler:
    __slots__ = ("rate", "count", "sample")

    def __init__(self, setting: Mapping[str, Any]) -> None:
        self.rate = int(setting["trace_rate"])
        self.count = int(setting["trace_count"])
        self.sample = 0


class TraceSettings:
    """Global + per-model trace settings of one engine, and the sampling they imply (thread-safe).

    ``on_change`` is called (outside the lock) after every update so the tracer can refresh what
    it derived (whether anything is traced at all, the output file).
    """

    def __init__(self, initial: Mapping[str, Any] | None = None, on_change: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._global = copy.deepcopy(TRACE_DEFAULTS)
        self._global.update(_validate(initial or {}, allow_local=True))
        self._models: dict[str, dict[str, Any]] = {}
        self._samplers: dict[str, _Sampler] = {}
        self._cache: dict[str, dict[str, Any]] = {}
        self._on_change = on_change
        self.active = self._any_on()

    def _effective(self, model: str) -> dict[str, Any]:
        out = copy.deepcopy(self._global)
        out.update(copy.deepcopy(self._models.get(model, {})))
        return out

    def _cached(self, key: str) -> dict[str, Any]:
        """The effective setting of ``key``, shared (not to be modified) until the next update."""
        setting = self._cache.get(key)
        if setting is None:
            setting = self._cache[key] = self._effective(key)
        return setting

    def _any_on(self) -> bool:
        return any(self._effective(m)["trace_level"] != ["OFF"] for m in ["", *self._models])

    def trace_settings(self, model: str = "") -> dict[str, Any]:
        """The effective settings (a model's own values over the global ones); ``trace_count`` is what remains."""
        with self._lock:
            out = self._effective(model)
            sampler = self._samplers.get(model if model in self._models else "")
            if sampler is not None:
                out["trace_count"] = str(sampler.count)
            return out

    def update_trace_settings(self, values: Mapping[str, Any], model: str = "", local: bool = False) -> dict[str, Any]:
        """Apply a partial update; a null (or, from gRPC, an empty list) clears the key back to the
        global value (per model) or the default (global). Network updates (``local=False``) may not
        change the file or the mode."""
        updates = _validate(values, allow_local=local)
        with self._lock:
            target = self._models.setdefault(model, {}) if model else self._global
            for key, value in updates.items():
                if value is None:
                    if model:
                        target.pop(key, None)
                    elif key in TRACE_DEFAULTS:
                        target[key] = copy.deepcopy(TRACE_DEFAULTS[key])
                else:
                    target[key] = value
            self._samplers.clear()  # Triton replaces its settings objects: counters start again
            self._cache.clear()
            self.active = self._any_on()
        if self._on_change is not None:
            self._on_change()
        return self.trace_settings(model)

    def sample(self, model: str, propagated: bool = False) -> dict[str, Any] | None:
        """The effective setting (shared: do not modify) when this request of ``model`` is to be traced, else None.

        A ``propagated`` OpenTelemetry context traces the request regardless of rate and count in
        opentelemetry mode, as Triton does.
        """
        with self._lock:
            key = model if model in self._models else ""
            setting = self._cached(key)
            if setting["trace_level"] == ["OFF"]:
                return None
            sampler = self._samplers.get(key)
            if sampler is None:
                sampler = self._samplers[key] = _Sampler(setting)
            hit = False
            if sampler.rate != 0 and sampler.count != 0:
                sampler.sample += 1
                hit = sampler.sample % sampler.rate == 0
                if hit and sampler.count > 0:
                    sampler.count -= 1
            if hit or (propagated and setting["trace_mode"] == "opentelemetry"):
                return setting
            return None

    def remaining(self, model: str = "") -> int:
        """Traces left to take for ``model``'s setting (-1: no limit)."""
        with self._lock:
            key = model if model in self._models else ""
            sampler = self._samplers.get(key)
            return sampler.count if sampler is not None else int(self._effective(key)["trace_count"])


__all__ = ["TraceSettings", "parse_trace_config", "TRACE_DEFAULTS", "TRACE_LEVELS", "TRACE_MODES", "OTEL_DEFAULTS"]
