"""The keyword options of ``infer()``, ``submit()`` and ``stream_infer()``, and the core request they describe.

One definition (:class:`InferOptions`) types the three methods, documents them and is the list an
unknown keyword is checked against, so a misspelt option fails at once with a message that names the
method called and the options it takes, rather than an internal function.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from tritonlite.request import InferenceRequest, RequestFlag, parse_version


class InferOptions(TypedDict, total=False):
    """Per-request options, as Triton's request fields (all optional).

    - ``outputs``: names of the outputs to return (default: every output); a list, never one string.
    - ``model_version``: a version number (``1`` or ``"1"``); default: what the version policy serves.
    - ``request_id``: echoed in the result and in error messages (``[request id: ...]``).
    - ``parameters``: request parameters a model reads (``request.parameters()`` in a Python model).
    - ``priority``: dynamic-batching priority level (1 is highest; 0 means the model's default).
    - ``timeout_us``: queue timeout in microseconds (0: the model's default policy).
    - ``sequence_id``, ``sequence_start``, ``sequence_end``: correlation id (int or str) and flags of a
      sequence-batched model's request.
    """

    outputs: Sequence[str]
    model_version: str | int
    request_id: str
    parameters: Mapping[str, Any]
    priority: int
    timeout_us: int
    sequence_id: int | str
    sequence_start: bool
    sequence_end: bool


#: the option names, in the order the docs list them
OPTION_NAMES: tuple[str, ...] = tuple(InferOptions.__annotations__)


def _unknown_option(call: str, name: str) -> TypeError:
    close = difflib.get_close_matches(name, OPTION_NAMES, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return TypeError(
        f"{call}() got an unexpected keyword argument '{name}'{hint} Accepted options: {', '.join(OPTION_NAMES)}"
    )


def core_request(call: str, model_name: str, inputs: Mapping[str, Any], options: Mapping[str, Any]) -> InferenceRequest:
    """The :class:`InferenceRequest` a Python API call describes.

    Misuse of the call itself (a non-mapping ``inputs``, an unknown option, ``outputs`` given as one
    string) raises ``TypeError`` at once, naming ``call``; what depends on the model (input names,
    datatypes, shapes, versions) is checked by the engine and raised as Triton's errors.
    """
    if not isinstance(model_name, str):
        raise TypeError(f"{call}() model_name must be a str, got {type(model_name).__name__}")
    if not isinstance(inputs, Mapping):
        raise TypeError(
            f"{call}() inputs must be a mapping of input name to numpy array, e.g. "
            f"{{'INPUT0': np.array(...)}}, got {type(inputs).__name__}"
        )
    for name in options:
        if name not in InferOptions.__annotations__:
            raise _unknown_option(call, name)
    outputs = options.get("outputs")
    if isinstance(outputs, (str, bytes)):
        raise TypeError(f"{call}() outputs must be a list of output names, got a single {type(outputs).__name__} {outputs!r}")
    parameters = options.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise TypeError(f"{call}() parameters must be a mapping of name to value, got {type(parameters).__name__}")
    flags = (RequestFlag.SEQUENCE_START if options.get("sequence_start") else 0) | (
        RequestFlag.SEQUENCE_END if options.get("sequence_end") else 0
    )
    return InferenceRequest(
        model_name=model_name,
        inputs=inputs,
        requested_outputs=tuple(outputs) if outputs else None,
        model_version=parse_version(options.get("model_version", "")),
        id=options.get("request_id", ""),
        parameters=dict(parameters) if parameters else {},
        priority=options.get("priority", 0),
        timeout_us=options.get("timeout_us", 0),
        correlation_id=options.get("sequence_id", 0),
        flags=int(flags),
    )


__all__ = ["InferOptions", "OPTION_NAMES", "core_request"]
