"""``/generate`` and ``/generate_stream`` (SSE) over HTTP, decoupled models included."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from http_raw import error_of, request


def _sse(url: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], list[Any]]:
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=20)
    try:
        conn.request("POST", path, body=json.dumps(body).encode())
        resp = conn.getresponse()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        raw = resp.read().decode()
    finally:
        conn.close()
    if resp.status != 200:
        return resp.status, headers, [json.loads(raw)]
    events = [json.loads(block[len("data: "):]) for block in raw.split("\n\n") if block.strip()]
    return resp.status, headers, events


def test_generate_maps_keys_to_inputs_and_parameters(http_url: str) -> None:
    body = {"id": "g1", "text_input": "ab", "parameters": {"factor": 3, "upper": True}, "temperature": 0.5}
    status, headers, data = request(http_url, "POST", "/v2/models/text_py/generate", json.dumps(body))
    assert status == 200 and headers["content-type"] == "application/json"
    doc = json.loads(data)
    assert doc["id"] == "g1" and doc["model_name"] == "text_py" and doc["model_version"] == "1"
    assert doc["text_output"] == "ABABAB" and doc["length"] == 6  # one element: a JSON scalar
    assert json.loads(doc["seen_params"]) == {"temperature": 0.5, "upper": True}  # response parameters are top-level keys


def test_generate_on_a_batching_model_and_arrays(http_url: str) -> None:
    status, _, data = request(http_url, "POST", "/v2/models/add_sub_onnx/generate",
                              json.dumps({"INPUT0": list(range(16)), "INPUT1": [1] * 16}))
    assert status == 200, data
    doc = json.loads(data)
    assert doc["OUTPUT0"] == [float(i + 1) for i in range(16)]


def test_generate_errors(http_url: str) -> None:
    status, _, data = request(http_url, "POST", "/v2/models/add_sub_onnx/generate", json.dumps({"INPUT0": [1] * 15, "INPUT1": [1] * 16}))
    assert status == 400 and "The schema can not convert input 'INPUT0'" in error_of(data)
    status, _, data = request(http_url, "POST", "/v2/models/text_py/generate", json.dumps({"text_input": 5}))
    assert status == 400
    status, _, data = request(http_url, "POST", "/v2/models/text_py/generate", b"{bad json")
    assert status == 400 and "failed to parse the request JSON buffer" in error_of(data)
    status, _, data = request(http_url, "POST", "/v2/models/text_py/generate", json.dumps({"text_input": "x"}), {"Content-Encoding": "gzip"})
    assert status == 400
    status, _, data = request(http_url, "POST", "/v2/models/no_such_model/generate", json.dumps({"text_input": "x"}))
    assert status == 404
    status, _, data = request(http_url, "POST", "/v2/models/text_py/generate", json.dumps({"nested": {"a": 1}}))
    assert status == 400
    # a decoupled model with more than one response cannot use /generate
    status, _, data = request(http_url, "POST", "/v2/models/repeat/generate", json.dumps({"IN": [1, 2, 3]}))
    assert status == 400 and "generate expects model to produce exactly 1 response" in error_of(data)
    status, _, data = request(http_url, "POST", "/v2/models/repeat/generate", json.dumps({"IN": [7]}))
    assert status == 200 and json.loads(data)["OUT"] == 7


def test_generate_stream_decoupled(http_url: str) -> None:
    status, headers, events = _sse(http_url, "/v2/models/repeat/generate_stream", {"IN": [4, 5, 6], "id": "s1"})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert headers.get("transfer-encoding") == "chunked"
    assert [e["OUT"] for e in events] == [4, 5, 6] and [e["IDX"] for e in events] == [0, 1, 2]
    assert all(e["id"] == "s1" and e["model_name"] == "repeat" for e in events)


def test_generate_stream_errors(http_url: str) -> None:
    # an error after the first response arrives as an event under 200
    status, _, events = _sse(http_url, "/v2/models/repeat/generate_stream", {"IN": [1, -1]})
    assert status == 200 and events[0]["OUT"] == 1 and "negative value at 1" in events[1]["error"]
    # an error before the first response is a normal error response
    status, _, events = _sse(http_url, "/v2/models/repeat/generate_stream", {"IN": [-1]})
    assert status == 500 and "negative value at 0" in events[0]["error"]
    status, _, events = _sse(http_url, "/v2/models/repeat/generate_stream", {"IN": "x"})
    assert status == 400


def test_generate_stream_non_decoupled_model(http_url: str) -> None:
    status, _, events = _sse(http_url, "/v2/models/text_py/generate_stream", {"text_input": "hi"})
    assert status == 200 and [e["text_output"] for e in events] == ["hi"]


@pytest.mark.parametrize("path", ["/v2/models/text_py/generate", "/v2/models/text_py/generate_stream"])
def test_generate_method_not_allowed(http_url: str, path: str) -> None:
    status, _, data = request(http_url, "GET", path)
    assert status == 405
