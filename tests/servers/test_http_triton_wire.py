"""Answers checked field by field against real Triton 2.51's HTTP server (a differential probe, run by
hand, sent both servers the same requests): status codes, Content-Type and the error texts.

Triton's HTTP frontend words JSON-level problems (unparsable JSON, a member of the wrong type or missing)
with RapidJSON / TritonJson texts, which tritonlite copies; Triton makes them 500, tritonlite 400 (a
deliberate choice, SPEC §1.6: the client's error, and no 5xx on bad input). Triton labels its routing
errors, health, readiness and the errors its infer handler sends before reading the request
``text/plain``."""

from __future__ import annotations

import json

import pytest

from http_raw import error_of, request

IDENT = "/v2/models/identity_py/infer"


def _infer(url: str, doc: object, path: str = IDENT, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return request(url, "POST", path, body, headers)


def _fp32(**fields: object) -> dict[str, object]:
    item: dict[str, object] = {"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    for key, value in fields.items():
        if value is None:
            item.pop(key)
        else:
            item[key] = value
    return {"inputs": [item]}


@pytest.mark.parametrize(
    "body,status,message",
    [
        (b"{junk", 400, "failed to parse the request JSON buffer: Missing a name for object member. at 1"),
        (b'{"inputs": []} x', 400, "failed to parse the request JSON buffer: The document root must not be followed by other values. at 15"),
        (b"[1]", 400, "Unable to parse 'inputs': attempt to access non-existing object member 'inputs'"),
        (b'{"inputs": {}}', 400, "Unable to parse 'inputs': attempt to access JSON non-array as array"),
        (_fp32(shape=None), 400, "Unable to parse 'shape': attempt to access non-existing object member 'shape'"),
        (_fp32(shape="4"), 400, "Unable to parse 'shape': attempt to access JSON non-array as array"),
        (_fp32(name=None), 400, "Unable to parse 'name': attempt to access non-existing object member 'name'"),
        (_fp32(datatype=5), 400, "Unable to parse 'datatype': attempt to access JSON non-string as string"),
        (_fp32(datatype="FLOAT"), 400, "invalid datatype for input INPUT0"),
        (_fp32(data=3), 400, "Unable to parse 'data': attempt to access JSON non-array as array"),
        (_fp32(data=["a", "b", "c", "d"]), 400, "Unable to parse 'data': attempt to access JSON non-number as double"),
        (_fp32(data=[1, 2, 3]), 400, "Unable to parse 'data': Shape does not match true shape of 'data' field"),
        (_fp32(data=None), 400, "Input must set only one of the following fields: 'data', 'binary_data_size' in 'parameters', "
                                "'shared_memory_region' in 'parameters'. But no field is set"),
        (_fp32(parameters={"binary_data_size": 16}), 400, "Input must set only one of the following fields: 'data', "
         "'binary_data_size' in 'parameters', 'shared_memory_region' in 'parameters'. But set 'data' 'binary_data_size'"),
        ({**_fp32(), "id": 5}, 400, "Unable to parse 'id': attempt to access JSON non-string as string"),
        ({**_fp32(), "parameters": [1]}, 400, "failed to get request params.: attempt to get members for non-object"),
        ({**_fp32(), "parameters": {"binary_data_output": "yes"}}, 400,
         "Unable to parse 'binary_data_output': attempt to access JSON non-boolean as boolean"),
        ({**_fp32(), "parameters": {"priority": "1"}}, 400,
         "Unable to parse 'priority': attempt to access JSON non-unsigned-integer as unsigned-integer"),
        ({**_fp32(), "parameters": {"sequence_id": -3}}, 400, "Unable to parse 'sequence_id': attempt to access JSON non-string as string"),
        ({**_fp32(), "parameters": {"headers": {"a": "b"}}}, 400,
         "parameter 'headers' has invalid type. It should be either 'int', 'bool', or 'string'."),
        ({**_fp32(), "parameters": {"triton_x": 1}}, 400,
         "parameter keys starting with 'triton_' are reserved for Triton usage and should not be specified."),
        ({**_fp32(), "outputs": [{"name": "OUTPUT0", "parameters": {"classification": -1}}]}, 400,
         "Unable to set 'classification': attempt to access JSON non-unsigned-integer as unsigned-integer"),
        ({**_fp32(), "outputs": [{}]}, 400, "Unable to parse 'name': attempt to access non-existing object member 'name'"),
    ],
)
def test_request_json_errors_have_triton_codes_and_texts(http_url: str, body: object, status: int, message: str) -> None:
    got, headers, data = _infer(http_url, body)
    assert (got, error_of(data)) == (status, message)
    assert headers["content-type"] == "application/json"


def test_json_element_types_per_datatype(http_url: str) -> None:
    doc = {"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "INT64", "data": [1.5, 2]}]}
    status, _, data = _infer(http_url, doc, "/v2/models/int_py/infer")
    assert (status, error_of(data)) == (400, "Unable to parse 'data': attempt to access JSON non-signed-integer as signed-integer")
    doc = {"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "BOOL", "data": [1, 0]}]}
    status, _, data = _infer(http_url, doc, "/v2/models/bool_py/infer")
    assert (status, error_of(data)) == (400, "Unable to parse 'data': attempt to access JSON non-boolean as boolean")
    doc = {"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "BYTES", "data": [1, 2]}]}
    status, _, data = _infer(http_url, doc, "/v2/models/bytes_py/infer")
    assert (status, error_of(data)) == (400, "Unable to parse JSON bytes array: attempt to access JSON non-string as string")
    doc = {"id": "r1", "inputs": [{"name": "INPUT0", "shape": [3], "datatype": "BYTES", "data": ["a", "b"]}]}
    status, _, data = _infer(http_url, doc, "/v2/models/bytes_py/infer")
    assert (status, error_of(data)) == (
        400, "[request id: r1] expected 3 string elements for inference input 'INPUT0' for model 'bytes_py', got 2")


def test_nan_and_infinity_in_json_data_are_accepted(http_url: str) -> None:
    body = b'{"inputs":[{"name":"INPUT0","shape":[3],"datatype":"FP32","data":[NaN,Infinity,-1.5]}]}'
    status, _, data = _infer(http_url, body, "/v2/models/var_py/infer")
    assert status == 200
    out = json.loads(data)["outputs"][0]["data"]
    assert out[0] != out[0] and out[1] == float("inf") and out[2] == -1.5


def test_binary_framing_is_checked_before_tensor_sizes(http_url: str) -> None:
    def binary(sizes: list[int], payload: bytes, ihcl: str | None = "HDR") -> tuple[int, str, str]:
        header = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32",
                                         "parameters": {"binary_data_size": sizes[0]}}]}).encode()
        headers = {} if ihcl is None else {"Inference-Header-Content-Length": str(len(header)) if ihcl == "HDR" else ihcl}
        status, h, data = _infer(http_url, header + payload, IDENT, headers)
        return status, h["content-type"], error_of(data)

    # the shortfall, not the input's size; extra bytes before the byte-size check
    assert binary([16], b"\0" * 10) == (400, "application/json",
                                       "unexpected size for input 'INPUT0', expecting 6 additional bytes for model 'identity_py'")
    assert binary([12], b"\0" * 16) == (400, "application/json", "unexpected additional input data for model 'identity_py'")
    # no header: the body up to its first NUL byte is the JSON, and no bytes are left for the input
    assert binary([16], b"\0" * 16, None) == (
        400, "application/json", "unexpected size for input 'INPUT0', expecting 16 additional bytes for model 'identity_py'")
    total = len(json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32",
                                        "parameters": {"binary_data_size": 16}}]})) + 16
    assert binary([16], b"\0" * 16, "99999") == (400, "text/plain", f"inference header size should be in range (0, {total}), got: 99999")
    assert binary([16], b"\0" * 16, "-1") == (400, "text/plain", f"inference header size should be in range (0, {total}), got: -1")
    # atoi: a header that is not a number reads as 0, a raw body for the model's single input
    status, headers, data = _infer(http_url, b"\0" * 16, IDENT, {"Inference-Header-Content-Length": "abc"})
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    assert data[int(headers["inference-header-content-length"]):] == b"\0" * 16


def test_empty_infer_body_is_a_raw_request(http_url: str) -> None:
    status, _, data = _infer(http_url, b"", "/v2/models/ens_add_sub/infer")
    assert status == 400 and error_of(data).startswith("[request id: <id_unknown>] Raw request must only have 1 input (found 1)")


def test_infer_errors_before_the_json_are_text_plain(http_url: str) -> None:
    status, headers, data = _infer(http_url, _fp32(), "/v2/models/nope/infer")
    assert (status, headers["content-type"], error_of(data)) == (404, "text/plain", "Request for unknown model: 'nope' is not found")
    status, headers, data = _infer(http_url, _fp32(), "/v2/models/identity_py/versions/0/infer")
    assert (status, headers["content-type"], error_of(data)) == (
        404, "text/plain", "Request for unknown model: 'identity_py' version 0 is not found")
    doc = {"inputs": [{"name": "IN", "shape": [1], "datatype": "INT32", "data": [3]}]}
    status, headers, data = _infer(http_url, doc, "/v2/models/repeat/infer")
    assert (status, headers["content-type"], error_of(data)) == (
        501, "text/plain", "HTTP end point doesn't support models with decoupled transaction policy")
    status, headers, data = _infer(http_url, _fp32(), IDENT, {"Content-Encoding": "GZIP"})  # names are case-sensitive
    assert (status, headers["content-type"], headers["accept-encoding"], error_of(data)) == (
        501, "text/plain", "gzip, deflate", "Unsupported compression type")


def test_failed_execution_is_text_plain(http_url: str) -> None:
    status, headers, data = _infer(http_url, _fp32(data=[-1, 2, 3, 4]), "/v2/models/raising_py/infer")
    assert status == 500 and headers["content-type"] == "text/plain"
    assert "negative input is not allowed" in error_of(data)


def test_fp16_output_as_json_is_refused_with_triton_text(http_url: str) -> None:
    header = json.dumps({"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "FP16", "parameters": {"binary_data_size": 4}}],
                         "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": False}}]}).encode()
    status, headers, data = _infer(http_url, header + b"\0" * 4, "/v2/models/fp16_py/infer",
                                   {"Inference-Header-Content-Length": str(len(header))})
    assert (status, headers["content-type"], error_of(data)) == (
        400, "text/plain", "sending FP16 data via JSON is not supported. Please use the binary data format for output")


@pytest.mark.parametrize(
    "method,path,status,content_type,message",
    [
        ("GET", "/v2/health/live", 200, "text/plain", None),
        ("GET", "/v2/models/identity_py/ready", 200, "text/plain", None),
        ("POST", "/v2/health/live", 405, "text/plain", "Method Not Allowed"),
        ("GET", "/v2/models/identity_py/infer", 405, "text/plain", "Method Not Allowed"),
        ("GET", "/v2/", 404, "text/plain", "Not Found"),
        ("GET", "/v2/models/identity_py/versions/99999999999999999999", 400, "application/json",
         "failed to get model version from specified version string '99999999999999999999' (details: stol), "
         "version should be an integral value > 0"),
    ],
)
def test_routing_answers(http_url: str, method: str, path: str, status: int, content_type: str, message: str | None) -> None:
    got, headers, data = request(http_url, method, path)
    assert (got, headers["content-type"]) == (status, content_type)
    if message is None:
        assert data == b""
    else:
        assert data == json.dumps({"error": message}, separators=(",", ":")).encode()


def test_settings_bodies_are_parsed_like_triton(http_url: str) -> None:
    status, _, data = request(http_url, "POST", "/v2/logging", b"")
    assert (status, error_of(data)) == (400, "failed to parse the request JSON buffer: The document is empty. at 0")
    status, _, data = request(http_url, "POST", "/v2/repository/index", b"{junk")
    assert (status, error_of(data)) == (400, "failed to parse the request JSON buffer: Missing a name for object member. at 1")
