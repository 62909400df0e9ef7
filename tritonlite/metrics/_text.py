"""Prometheus text exposition (format 0.0.4), written directly.

prometheus_client appends ``_total`` to counters; Triton's names have no suffix, so the text is
written here, in the shape prometheus-cpp (Triton's serializer) gives it: ``# HELP``, ``# TYPE``, then
one line per series; labels sorted by name, a summary's ``quantile`` and a histogram's ``le`` last.
"""

from __future__ import annotations

import math
import re
from typing import Iterable, Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def valid_metric_name(name: str) -> bool:
    return bool(_METRIC_NAME.match(name))


def valid_label_name(name: str) -> bool:
    return bool(_LABEL_NAME.match(name)) and not name.startswith("__")


def sanitize_label_name(name: str) -> str:
    """A valid label name made from ``name`` (invalid characters become ``_``)."""
    clean = _INVALID_LABEL_CHARS.sub("_", name) or "_"
    return "_" + clean if clean[0].isdigit() else clean


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_labels(labels: Mapping[str, str], extra: tuple[str, str] | None = None) -> str:
    """``{a="1",b="2"}`` with names sorted (prometheus-cpp keeps labels in a std::map); ``extra`` goes last."""
    parts = [f'{k}="{escape_label_value(str(labels[k]))}"' for k in sorted(labels)]
    if extra is not None:
        parts.append(f'{extra[0]}="{escape_label_value(extra[1])}"')
    return "{" + ",".join(parts) + "}" if parts else ""


def add_label(label_text: str, name: str, value: str) -> str:
    """Append one label to an already formatted label set (for ``quantile`` and ``le``)."""
    item = f'{name}="{escape_label_value(value)}"'
    return "{" + item + "}" if not label_text else label_text[:-1] + "," + item + "}"


def format_value(value: float) -> str:
    """Integers without a fraction, other floats in shortest round-trip form, ``+Inf``/``-Inf``/``NaN``."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def family(lines: list[str], name: str, kind: str, help_text: str, samples: Iterable[str]) -> None:
    """Append one family (its HELP/TYPE header and ``samples``) to ``lines``; nothing when it has no series."""
    body = list(samples)
    if not body:
        return
    lines.append(f"# HELP {name} {escape_help(help_text)}")
    lines.append(f"# TYPE {name} {kind}")
    lines.extend(body)


__all__ = [
    "CONTENT_TYPE",
    "add_label",
    "escape_label_value",
    "family",
    "format_labels",
    "format_value",
    "sanitize_label_name",
    "valid_label_name",
    "valid_metric_name",
]
