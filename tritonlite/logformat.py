"""Log line formats of ``tritonlite serve``: Triton's two (``default``, ``ISO8601``) plus ``json``.

Triton (``common/src/logging.cc``) writes

    default:  I1204 14:00:56.692394 4242 model_manager.py:201] "successfully loaded 'simple' version 1"
    ISO8601:  2026-12-04T14:00:56Z I 4242 model_manager.py:201] "successfully loaded 'simple' version 1"

the level letter being ``E``/``W``/``I``/``V`` (verbose), the message escaped with JSON string rules and quoted
(``TRITON_SERVER_ESCAPE_LOG_MESSAGES=0`` turns the escaping off, as in Triton). A multi-line entry (the startup
tables) is a heading line followed by its block, unescaped: pass the block as ``extra={"block": text}``.
``json`` is tritonlite's own: one JSON object per line, for log collectors.
"""

from __future__ import annotations

import json
import logging
import os
import textwrap
import time
from typing import Any, Sequence

LOG_FORMATS = ("default", "ISO8601", "json")

def _level_letter(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "E"
    if levelno >= logging.WARNING:
        return "W"
    return "I" if levelno >= logging.INFO else "V"


class TritonFormatter(logging.Formatter):
    """``logging.Formatter`` writing Triton's ``default`` or ``ISO8601`` line, or a JSON object (``json``)."""

    def __init__(self, log_format: str = "default", escape: bool | None = None) -> None:
        super().__init__()
        if log_format not in LOG_FORMATS:
            raise ValueError(f"invalid log format '{log_format}', expected one of {', '.join(LOG_FORMATS)}")
        self.log_format = log_format
        self.escape = os.environ.get("TRITON_SERVER_ESCAPE_LOG_MESSAGES") != "0" if escape is None else escape

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        block = getattr(record, "block", None)
        if self.log_format == "json":
            entry: dict[str, Any] = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                + f".{int((record.created % 1) * 1_000_000):06d}Z",
                "level": record.levelname,
                "pid": record.process,
                "file": record.filename,
                "line": record.lineno,
                "logger": record.name,
                "message": message,
            }
            if block is not None:
                entry["block"] = block
            return json.dumps(entry)
        head = self._prefix(record)
        if block is not None:  # a multi-line entry: optional heading, then the block as is
            return f"{head} {json.dumps(message) if self.escape else message}\n{block}" if message else f"{head}\n{block}"
        return f"{head} {json.dumps(message) if self.escape else message}"

    def _prefix(self, record: logging.LogRecord) -> str:
        letter = _level_letter(record.levelno)
        where = f"{record.process} {record.filename}:{record.lineno}]"
        if self.log_format == "ISO8601":
            return f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(record.created))} {letter} {where}"
        local = time.localtime(record.created)
        usec = int((record.created % 1) * 1_000_000)
        return f"{letter}{time.strftime('%m%d %H:%M:%S', local)}.{usec:06d} {where}"


def table(headers: tuple[str, ...], rows: list[tuple[str, ...]], max_width: int = 60) -> str:
    """An ASCII table framed as Triton frames its startup tables; cells wider than ``max_width`` wrap."""
    wrapped = [[textwrap.wrap(c, max_width) or [""] for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in wrapped:
        widths = [max(w, *(len(part) for part in cell)) for w, cell in zip(widths, row)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        return "|" + "|".join(f" {c:<{w}} " for c, w in zip(cells, widths)) + "|"

    body = []
    for row in wrapped:
        for i in range(max(len(cell) for cell in row)):
            body.append(line([cell[i] if i < len(cell) else "" for cell in row]))
    return "\n".join([rule, line(headers), rule, *body, rule])


__all__ = ["LOG_FORMATS", "TritonFormatter", "table"]
