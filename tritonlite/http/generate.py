"""``/generate`` and ``/generate_stream`` (SPEC §2.12, provisional in Triton).

The JSON body's top-level keys, plus the keys of its ``parameters`` object, are matched against the
model's input names: a match becomes that input tensor (shape from the model metadata: fixed dims
divide the element count, the innermost -1 takes the rest, other -1 become 1), anything else a
request parameter. Responses flatten outputs to top-level keys (1 element → scalar). Both endpoints
serve decoupled models; ``generate`` requires exactly one response, ``generate_stream`` sends each
response as a Server-Sent Event ``data: <json>\\n\\n``.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import TYPE_CHECKING, Any, AsyncIterator

import numpy as np

from tritonlite.engine import parse_version
from tritonlite.errors import InvalidArgumentError, TritonLiteError
from tritonlite.http.codec import jsonable_params, parse_json
from tritonlite.http.connection import Request, Response, StreamingResponse, json_error
from tritonlite.protocol.models import ModelInfo, model_info, prepare_output
from tritonlite.protocol.status import http_status
from tritonlite.request import InferenceRequest, InferResult

if TYPE_CHECKING:
    from tritonlite.http.routes import HttpApp

_ONE_RESPONSE = (
    "generate expects model to produce exactly 1 response, use generate stream for model that generates various "
    "number of responses"
)


def _shape_for(name: str, meta_shape: list[int], count: int) -> list[int]:
    fixed = math.prod(d for d in meta_shape if d >= 0) if meta_shape else 1
    variable = [i for i, d in enumerate(meta_shape) if d < 0]
    if (fixed == 0 and count) or (fixed and count % fixed):
        raise InvalidArgumentError(f"The schema can not convert input '{name}' to the shape {meta_shape}")
    shape = list(meta_shape)
    if variable:
        for i in variable:
            shape[i] = 1
        shape[variable[-1]] = count // fixed if fixed else 0
    elif fixed != count:
        raise InvalidArgumentError(f"The schema can not convert input '{name}' to the shape {meta_shape}")
    return shape


def _tensor(name: str, value: Any, datatype: str, meta_shape: list[int]) -> np.ndarray:
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, (list, dict)) for v in values):
        raise InvalidArgumentError(f"The schema can not convert input '{name}': expected a scalar or a 1-D array")
    shape = _shape_for(name, meta_shape, len(values))
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in values):
            raise InvalidArgumentError(f"The schema can not convert input '{name}': expected string values for BYTES")
        arr = np.empty(len(values), dtype=np.object_)
        arr[:] = [v.encode("utf-8") for v in values]
        return arr.reshape(shape)
    if datatype in ("FP16", "BF16"):
        raise InvalidArgumentError(f"The schema can not convert input '{name}': {datatype} is not supported in JSON")
    from tritonlite.datatypes import DataType

    dtype = DataType.from_protocol(datatype).numpy_dtype
    if datatype == "BOOL":
        ok = all(isinstance(v, bool) for v in values)
    elif datatype.startswith(("INT", "UINT")):
        ok = all(type(v) is int for v in values)
    else:
        ok = all(type(v) in (int, float) for v in values)
    if not ok:
        raise InvalidArgumentError(f"The schema can not convert input '{name}': values do not match datatype {datatype}")
    try:
        return np.array(values).astype(dtype).reshape(shape)
    except (OverflowError, ValueError) as exc:
        raise InvalidArgumentError(f"The schema can not convert input '{name}': {exc}") from None


def _build_request(req: Request, name: str, version: str, info: ModelInfo) -> InferenceRequest:
    enc = (req.headers.get("content-encoding") or "identity").strip().lower()
    if enc != "identity":
        raise InvalidArgumentError(f"Unsupported content-encoding '{enc}' for generate: only identity is accepted")
    doc = parse_json(req.body) if req.body.strip() else {}
    if not isinstance(doc, dict):
        raise InvalidArgumentError("failed to parse the request JSON buffer: expected a JSON object")
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "parameters" and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    req_id = flat.pop("id", "")
    if not isinstance(req_id, str):
        raise InvalidArgumentError("Unable to parse 'id': attempt to access JSON non-string as string")
    batch = [-1] if info.batching else []
    inputs: dict[str, np.ndarray] = {}
    params: dict[str, Any] = {}
    for key, value in flat.items():
        if key in info.inputs:
            datatype, dims = info.inputs[key]
            inputs[key] = _tensor(key, value, datatype, batch + list(dims))
        elif isinstance(value, (str, bool, int, float)):
            if key.startswith("triton_"):
                raise InvalidArgumentError(f"parameter keys starting with 'triton_' are reserved for Triton usage: '{key}'")
            params[key] = value
        else:
            raise InvalidArgumentError(f"parameter '{key}' has an unsupported type: expected a string, integer, boolean or number")
    return InferenceRequest(model_name=name, inputs=inputs, model_version=parse_version(version), id=req_id, parameters=params)


def _result_json(result: InferResult, request: InferenceRequest, info: ModelInfo) -> bytes:
    doc: dict[str, Any] = {}
    rid = result.id or request.id
    if rid:
        doc["id"] = rid
    doc["model_name"] = result.model_name or request.model_name
    doc["model_version"] = str(result.model_version or info.version)
    doc.update(jsonable_params(result.parameters))
    for out_name, array in result.outputs.items():
        datatype, _shape, arr = prepare_output(info, out_name, array)
        assert arr is not None
        flat = arr.reshape(-1)
        if datatype in ("FP16", "BF16"):
            values: list[Any] = flat.astype(np.float32).tolist() if datatype == "FP16" else flat.tolist()
        elif datatype == "BYTES":
            values = [v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v) for v in flat]
        else:
            values = flat.tolist()
        doc[out_name] = values[0] if len(values) == 1 else values
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _prepare(app: "HttpApp", req: Request, name: str, version: str) -> tuple[InferenceRequest, ModelInfo]:
    info = model_info(app.engine, name, parse_version(version))
    try:
        request = _build_request(req, name, version, info)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, TritonLiteError):
            raise
        raise InvalidArgumentError(f"Unable to parse the generate request: {exc}") from None
    return request, info


async def generate(app: "HttpApp", req: Request, name: str, version: str) -> Response:
    request, info = _prepare(app, req, name, version)
    stream = app.engine._submit_stream(request)
    results: list[InferResult] = []
    try:
        async for result in stream:
            results.append(result)
    except asyncio.CancelledError:
        stream.cancel()
        raise
    if len(results) != 1:
        return json_error(400, _ONE_RESPONSE)
    body = _result_json(results[0], request, info)
    return Response(200, body, [("Content-Type", "application/json")])


async def generate_stream(app: "HttpApp", req: Request, name: str, version: str) -> Response | StreamingResponse:
    request, info = _prepare(app, req, name, version)
    stream = app.engine._submit_stream(request)
    it = stream.__aiter__()
    try:
        first = await it.__anext__()
    except StopAsyncIteration:
        first = None
    except TritonLiteError as exc:
        return json_error(http_status(exc), exc.message)
    except asyncio.CancelledError:
        stream.cancel()
        raise

    async def events() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield b"data: " + _result_json(first, request, info) + b"\n\n"
            while True:
                try:
                    result = await it.__anext__()
                except StopAsyncIteration:
                    return
                except TritonLiteError as exc:
                    yield b"data: " + json.dumps({"error": exc.message}, ensure_ascii=False).encode() + b"\n\n"
                    return
                try:
                    yield b"data: " + _result_json(result, request, info) + b"\n\n"
                except TritonLiteError as exc:
                    yield b"data: " + json.dumps({"error": exc.message}, ensure_ascii=False).encode() + b"\n\n"
                    return
        finally:
            stream.cancel()  # no-op once the stream has ended; stops the model if the client went away

    return StreamingResponse(events(), 200, [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache")])


__all__ = ["generate", "generate_stream"]
