"""Reading a ModelConfig from config.pbtxt text or a JSON override; errors name the source.

Both paths go through protobuf itself (``text_format`` / ``json_format``), as Triton does, so
whatever Triton accepts we accept; failures become :class:`InvalidArgumentError`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format, text_format

from tritonlite.config import messages as msg
from tritonlite.errors import InvalidArgumentError
from tritonlite.protos.model_config_pb2 import ModelConfig


def parse_pbtxt(text: str, source: str = "<string>") -> ModelConfig:
    """Parse protobuf text format; errors carry ``source`` and text_format's ``line:col : why``."""
    config = ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise InvalidArgumentError(msg.fmt(msg.PARSE_FAILED, source=source, detail=exc)) from exc
    return config


def load_config_file(path: str | os.PathLike[str]) -> ModelConfig:
    """Read and parse a config.pbtxt; an unreadable or missing file is an invalid-argument error."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidArgumentError(msg.fmt(msg.READ_FAILED, source=source, detail=detail)) from exc
    return parse_pbtxt(text, source=source)


def parse_json_config(
    text: str | bytes | Mapping[str, Any], source: str = "config override"
) -> ModelConfig:
    """Parse Triton's JSON config form (load-request override); int64s may be numbers or strings.

    ``source`` is accepted for symmetry with :func:`parse_pbtxt`; Triton's message does not name it.
    """
    del source
    config = ModelConfig()
    try:
        if isinstance(text, Mapping):
            json_format.ParseDict(dict(text), config)
        else:
            json_format.Parse(text, config)
    except (json_format.ParseError, json.JSONDecodeError, TypeError, ValueError) as exc:
        raise InvalidArgumentError(msg.fmt(msg.JSON_OVERRIDE_FAILED, detail=exc)) from exc
    return config
