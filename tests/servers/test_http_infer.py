"""HTTP inference with the real tritonclient (sync and aio): JSON and binary tensors both ways,
IHCL, raw binary requests, BYTES, FP16, compression, classification, parameters, sequences,
ensembles, decoupled models (501), error mapping, concurrency."""

from __future__ import annotations

import asyncio
import gzip
import json
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

httpclient = pytest.importorskip("tritonclient.http")
import tritonclient.http.aio as aioclient  # noqa: E402
from tritonclient.utils import InferenceServerException, serialize_byte_tensor  # noqa: E402

from http_raw import error_of, request  # noqa: E402


def _in(name: str, arr: np.ndarray, datatype: str, binary: bool = True) -> Any:
    t = httpclient.InferInput(name, list(arr.shape), datatype)
    t.set_data_from_numpy(arr, binary_data=binary)
    return t


def _add_sub_inputs(binary0: bool = True, binary1: bool = True) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    b = np.full((2, 16), 0.5, dtype=np.float32)
    return a, b, [_in("INPUT0", a, "FP32", binary0), _in("INPUT1", b, "FP32", binary1)]


@pytest.mark.parametrize("binary_in", [(True, True), (False, False), (True, False)])
@pytest.mark.parametrize("binary_out", [None, True, False])
def test_onnx_add_sub_json_and_binary(http_client: Any, binary_in: tuple[bool, bool], binary_out: bool | None) -> None:
    a, b, inputs = _add_sub_inputs(*binary_in)
    outputs = None
    if binary_out is not None:
        outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary_out),
                   httpclient.InferRequestedOutput("OUTPUT1", binary_data=binary_out)]
    result = http_client.infer("add_sub_onnx", inputs, outputs=outputs, request_id="rq-1")
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
    resp = result.get_response()
    assert resp["id"] == "rq-1" and resp["model_name"] == "add_sub_onnx" and resp["model_version"] == "1"
    assert list(resp) == ["id", "model_name", "model_version", "outputs"]
    for out in resp["outputs"]:
        assert out["shape"] == [2, 16] and out["datatype"] == "FP32"
        if binary_out is False:
            assert "data" in out and "parameters" not in out
        else:
            assert out["parameters"] == {"binary_data_size": 128}


def test_requested_output_subset_and_mixed_binary(http_client: Any) -> None:
    a, b, inputs = _add_sub_inputs()
    result = http_client.infer("add_sub_onnx", inputs, outputs=[httpclient.InferRequestedOutput("OUTPUT1", binary_data=False)])
    assert result.as_numpy("OUTPUT0") is None
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("add_sub_onnx", inputs, outputs=[httpclient.InferRequestedOutput("NOPE")])
    assert info.value.status() == "400" and "unexpected inference output 'NOPE'" in info.value.message()


def test_response_headers_binary_and_json(http_url: str) -> None:
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
                       "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]}).encode()
    status, headers, data = request(http_url, "POST", "/v2/models/identity_py/infer", body)
    assert status == 200 and headers["content-type"] == "application/octet-stream"
    hlen = int(headers["inference-header-content-length"])
    doc = json.loads(data[:hlen])
    assert doc["outputs"][0]["parameters"]["binary_data_size"] == 16
    assert np.frombuffer(data[hlen:], np.float32).tolist() == [1, 2, 3, 4]
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}).encode()
    status, headers, data = request(http_url, "POST", "/v2/models/var_py/infer", body)
    assert status == 400  # var_py expects rank 1
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [[1, 2], [3, 4]]}]}).encode()
    status, headers, data = request(http_url, "POST", "/v2/models/var_py/infer", body)
    assert status == 200 and headers["content-type"] == "application/json" and "inference-header-content-length" not in headers
    assert json.loads(data)["outputs"][0]["data"] == [1.0, 2.0, 3.0, 4.0]  # nested request data, flat response data


def test_raw_binary_request(http_url: str) -> None:
    x = np.arange(4, dtype=np.float32)
    status, headers, data = request(http_url, "POST", "/v2/models/identity_py/infer", x.tobytes(),
                                    {"Inference-Header-Content-Length": "0"})
    assert status == 200, data
    hlen = int(headers["inference-header-content-length"])
    assert json.loads(data[:hlen])["outputs"][0]["shape"] == [4]
    np.testing.assert_array_equal(np.frombuffer(data[hlen:], np.float32), x)
    # variable dim deduced from the byte size
    y = np.arange(6, dtype=np.float32)
    status, headers, data = request(http_url, "POST", "/v2/models/var_py/infer", y.tobytes(), {"Inference-Header-Content-Length": "0"})
    hlen = int(headers["inference-header-content-length"])
    assert status == 200 and json.loads(data[:hlen])["outputs"][0]["shape"] == [6]
    # BYTES: only a model input of shape [1] (bytes_py's is [-1]; Triton 2.51 refuses it too)
    status, headers, data = request(http_url, "POST", "/v2/models/bytes_py/infer", serialize_byte_tensor(np.array([b"hi"], object)).item(),
                                    {"Inference-Header-Content-Length": "0"})
    assert (status, error_of(data)) == (
        400, "[request id: <id_unknown>] For BYTE datatype raw input 'INPUT0', the model must have input shape [1]")
    # a model with two inputs cannot take a raw request
    status, _, data = request(http_url, "POST", "/v2/models/add_sub_onnx/infer", b"\0" * 64, {"Inference-Header-Content-Length": "0"})
    assert status == 400 and "Raw request must only have 1 input" in error_of(data)
    status, _, data = request(http_url, "POST", "/v2/models/identity_py/infer", b"\0" * 12, {"Inference-Header-Content-Length": "0"})
    assert status == 400 and "input byte size mismatch" in error_of(data)


@pytest.mark.parametrize("binary", [True, False])
def test_bytes_tensors(http_client: Any, binary: bool) -> None:
    values = np.array([b"hello", b"", "ünïcode".encode(), b"x" * 300], dtype=object)
    result = http_client.infer("bytes_py", [_in("INPUT0", values, "BYTES", binary)],
                               outputs=[httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary)])
    got = [v.encode() if isinstance(v, str) else v for v in result.as_numpy("OUTPUT0").tolist()]  # JSON: str
    assert got == values.tolist()
    assert result.get_output("OUTPUT0")["datatype"] == "BYTES"


def test_fp16_binary_only(http_client: Any, http_url: str) -> None:
    x = np.array([1.5, -2.25, 65504], dtype=np.float16)
    result = http_client.infer("fp16_py", [_in("INPUT0", x, "FP16")])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), x)
    assert result.get_output("OUTPUT0")["datatype"] == "FP16"
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP16", "data": [1.0]}]}).encode()
    status, _, data = request(http_url, "POST", "/v2/models/fp16_py/infer", body)
    assert status == 400 and "receiving FP16 data via JSON is not supported" in error_of(data)
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("fp16_py", [_in("INPUT0", x, "FP16")], outputs=[httpclient.InferRequestedOutput("OUTPUT0", binary_data=False)])
    assert "sending FP16 data via JSON is not supported" in info.value.message()


def test_int_and_bool_json_coercion(http_client: Any, http_url: str) -> None:
    big = np.array([2**62, -5, 0], dtype=np.int64)
    r = http_client.infer("int_py", [_in("INPUT0", big, "INT64", binary=False)], outputs=[httpclient.InferRequestedOutput("OUTPUT0", binary_data=False)])
    assert r.as_numpy("OUTPUT0").tolist() == big.tolist()
    flags = np.array([True, False, True])
    r = http_client.infer("bool_py", [_in("INPUT0", flags, "BOOL", binary=False)], outputs=[httpclient.InferRequestedOutput("OUTPUT0", binary_data=False)])
    assert r.as_numpy("OUTPUT0").tolist() == [True, False, True] and r.get_response()["outputs"][0]["data"] == [True, False, True]
    r = http_client.infer("bool_py", [_in("INPUT0", flags, "BOOL")])
    assert r.as_numpy("OUTPUT0").tolist() == [True, False, True]
    for model, dt, data in (("int_py", "INT64", [1.5]), ("int_py", "INT64", ["1"]), ("bool_py", "BOOL", [1]),
                            ("identity_py", "FP32", [1, 2, "3", 4]), ("int_py", "INT64", [True])):
        body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [len(data)], "datatype": dt, "data": data}]}).encode()
        status, _, resp = request(http_url, "POST", f"/v2/models/{model}/infer", body)
        assert status == 400, (model, data, resp)
        assert "Unable to parse 'data'" in error_of(resp)


@pytest.mark.parametrize("req_alg", [None, "gzip", "deflate"])
@pytest.mark.parametrize("resp_alg", [None, "gzip", "deflate"])
def test_compression(http_client: Any, req_alg: str | None, resp_alg: str | None) -> None:
    a, b, inputs = _add_sub_inputs(True, False)
    result = http_client.infer("add_sub_onnx", inputs, request_compression_algorithm=req_alg, response_compression_algorithm=resp_alg)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)


def test_compression_raw(http_url: str) -> None:
    x = np.arange(4, dtype=np.float32)
    header = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}],
                         "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]}).encode()
    # IHCL counts the uncompressed JSON; the whole body is compressed
    body = gzip.compress(header + x.tobytes())
    status, headers, data = request(http_url, "POST", "/v2/models/identity_py/infer", body,
                                    {"Content-Encoding": "gzip", "Inference-Header-Content-Length": str(len(header)),
                                     "Accept-Encoding": "deflate;q=0.5, gzip;q=0.9, br"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    plain = gzip.decompress(data)
    hlen = int(headers["inference-header-content-length"])
    np.testing.assert_array_equal(np.frombuffer(plain[hlen:], np.float32), x)
    # identity wins when it has the highest weight; unknown encodings are ignored
    status, headers, data = request(http_url, "POST", "/v2/models/identity_py/infer", body,
                                    {"Content-Encoding": "gzip", "Inference-Header-Content-Length": str(len(header)),
                                     "Accept-Encoding": "identity, gzip;q=0.5"})
    assert status == 200 and "content-encoding" not in headers
    status, headers, data = request(http_url, "POST", "/v2/models/identity_py/infer", body,
                                    {"Content-Encoding": "br", "Inference-Header-Content-Length": str(len(header))})
    assert status == 501 and error_of(data) == "Unsupported compression type"
    assert headers["accept-encoding"] == "gzip, deflate"
    status, _, data = request(http_url, "POST", "/v2/models/identity_py/infer", b"not gzip at all",
                              {"Content-Encoding": "gzip"})
    assert status == 400 and "failed to decompress" in error_of(data)
    status, _, data = request(http_url, "POST", "/v2/models/identity_py/infer", zlib.compress(header + x.tobytes())[:-6],
                              {"Content-Encoding": "deflate", "Inference-Header-Content-Length": str(len(header))})
    assert status == 400


def test_classification(http_client: Any, http_url: str) -> None:
    x = np.array([[0.1, 0.7, 0.3, 0.2], [4, 3, 2, 1]], dtype=np.float32)
    for binary in (True, False):
        r = http_client.infer("labels_py", [_in("INPUT0", x, "FP32")],
                              outputs=[httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary, class_count=2)])
        out = r.as_numpy("OUTPUT0")
        assert out.shape == (2, 2) and r.get_output("OUTPUT0")["datatype"] == "BYTES"
        assert [v.decode() if isinstance(v, bytes) else v for v in out.reshape(-1)] == [
            "0.700000:1:dog", "0.300000:2:bird", "4.000000:0:cat", "3.000000:1:dog"]
    # no labels, more classes than elements, non-batching model
    r = http_client.infer("identity_py", [_in("INPUT0", np.array([3, 1, 2, 0], np.float32), "FP32")],
                          outputs=[httpclient.InferRequestedOutput("OUTPUT0", class_count=9)])
    assert r.as_numpy("OUTPUT0").tolist() == [b"3.000000:0", b"2.000000:2", b"1.000000:1", b"0.000000:3"]
    r = http_client.infer("int_py", [_in("INPUT0", np.array([5, 9], np.int64), "INT64")],
                          outputs=[httpclient.InferRequestedOutput("OUTPUT0", class_count=1)])
    assert r.as_numpy("OUTPUT0").tolist() == [b"9:1"]
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("bytes_py", [_in("INPUT0", np.array([b"a"], object), "BYTES")],
                          outputs=[httpclient.InferRequestedOutput("OUTPUT0", class_count=1)])
    assert "class result not available" in info.value.message()


def test_parameters_sequence_fields_and_response_parameters(http_client: Any, http_url: str) -> None:
    x = np.ones(4, np.float32)
    r = http_client.infer("echo_params_py", [_in("INPUT0", x, "FP32")],
                          parameters={"temperature": 0.5, "mode": "fast", "n": 3, "flag": True}, priority=1, timeout=10_000_000)
    seen = json.loads(r.as_numpy("SEEN")[0])
    assert seen["parameters"] == {"temperature": 0.5, "mode": "fast", "n": 3, "flag": True}
    assert r.get_response()["parameters"] == {"echo": "yes", "count": 3}
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
                       "parameters": {"triton_secret": 1}}).encode()
    status, _, data = request(http_url, "POST", "/v2/models/echo_params_py/infer", body)
    assert status == 400 and "reserved" in error_of(data)
    for bad in ({"priority": -1}, {"timeout": "soon"}, {"sequence_start": 1}, {"sequence_id": 1.5}, {"custom": [1, 2]}):
        body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
                           "parameters": bad}).encode()
        status, _, data = request(http_url, "POST", "/v2/models/echo_params_py/infer", body)
        assert status == 400, (bad, data)


def test_sequence_model(http_client: Any) -> None:
    def step(value: int, seq: Any, start: bool = False, end: bool = False) -> int:
        r = http_client.infer("seq_py", [_in("INPUT", np.array([[value]], np.int32), "INT32")],
                              sequence_id=seq, sequence_start=start, sequence_end=end)
        return int(r.as_numpy("OUTPUT")[0, 0])

    assert step(1, 42, start=True) == 1
    assert step(10, "seq-str", start=True) == 10
    assert step(2, 42) == 3
    assert step(5, "seq-str", end=True) == 15
    assert step(3, 42, end=True) == 6
    with pytest.raises(InferenceServerException) as info:
        step(1, 0)
    assert info.value.status() == "400" and "correlation ID" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        step(1, 77)
    assert "START" in info.value.message()


def test_ensemble(http_client: Any) -> None:
    a = np.arange(16, dtype=np.float32).reshape(1, 16)
    b = np.ones((1, 16), np.float32)
    r = http_client.infer("ens_add_sub", [_in("A", a, "FP32"), _in("B", b, "FP32")])
    np.testing.assert_array_equal(r.as_numpy("SUM"), a + b)
    np.testing.assert_array_equal(r.as_numpy("DIFF"), a - b)


def test_decoupled_model_is_501(http_client: Any) -> None:
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("repeat", [_in("IN", np.array([1, 2], np.int32), "INT32")])
    assert info.value.status() == "501" and "decoupled" in info.value.message()


def test_error_mapping(http_client: Any) -> None:
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("raising_py", [_in("INPUT0", -np.ones(4, np.float32), "FP32")])
    assert info.value.status() == "500" and "negative input is not allowed" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("identity_py", [_in("INPUT0", np.ones(3, np.float32), "FP32")])
    assert info.value.status() == "400" and "unexpected shape for input 'INPUT0'" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("identity_py", [_in("INPUT0", np.ones(4, np.int32), "INT32")])
    assert "data-type is 'INT32', but model 'identity_py' expects 'FP32'" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("identity_py", [_in("WRONG", np.ones(4, np.float32), "FP32")])
    assert "unexpected inference input 'WRONG'" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("no_such_model", [_in("INPUT0", np.ones(4, np.float32), "FP32")])
    assert info.value.status() == "404"
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("identity_py", [_in("INPUT0", np.ones(4, np.float32), "FP32")], model_version="3")
    assert info.value.status() == "404"
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("add_sub_onnx", [_in("INPUT0", np.ones((9, 16), np.float32), "FP32"), _in("INPUT1", np.ones((9, 16), np.float32), "FP32")])
    assert "batch-size must be <= 8" in info.value.message()


def test_async_infer_and_keepalive_pool(http_url: str) -> None:
    c = httpclient.InferenceServerClient(http_url, concurrency=8)
    try:
        x = np.arange(4, dtype=np.float32)
        handles = [c.async_infer("identity_py", [_in("INPUT0", x + i, "FP32")]) for i in range(64)]
        for i, h in enumerate(handles):
            np.testing.assert_array_equal(h.get_result(timeout=30).as_numpy("OUTPUT0"), x + i)
    finally:
        c.close()


def test_many_concurrent_clients(http_url: str) -> None:
    def worker(i: int) -> bool:
        c = httpclient.InferenceServerClient(http_url)
        try:
            a = np.full((1, 16), i, np.float32)
            for _ in range(5):
                r = c.infer("add_sub_onnx", [_in("INPUT0", a, "FP32"), _in("INPUT1", a, "FP32")])
                assert float(r.as_numpy("OUTPUT0")[0, 0]) == 2 * i
            return True
        finally:
            c.close()

    with ThreadPoolExecutor(32) as pool:
        assert all(pool.map(worker, range(64)))


def test_aio_client(http_url: str) -> None:
    async def main() -> None:
        c = aioclient.InferenceServerClient(http_url)
        try:
            assert await c.is_server_live() and await c.is_server_ready()
            assert await c.is_model_ready("add_sub_onnx")
            assert (await c.get_model_metadata("add_sub_onnx"))["name"] == "add_sub_onnx"
            assert (await c.get_model_config("identity_py"))["backend"] == "python"
            a = np.arange(16, dtype=np.float32).reshape(1, 16)
            i0, i1 = aioclient.InferInput("INPUT0", [1, 16], "FP32"), aioclient.InferInput("INPUT1", [1, 16], "FP32")
            i0.set_data_from_numpy(a)
            i1.set_data_from_numpy(a, binary_data=False)
            results = await asyncio.gather(*[c.infer("add_sub_onnx", [i0, i1], request_compression_algorithm="gzip",
                                                     response_compression_algorithm="gzip") for _ in range(16)])
            for r in results:
                np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), 2 * a)
            stats = await c.get_inference_statistics("add_sub_onnx")
            assert stats["model_stats"][0]["name"] == "add_sub_onnx"
            with pytest.raises(InferenceServerException):
                await c.infer("repeat", [i0])
        finally:
            await c.close()

    asyncio.run(main())


def test_zero_element_input(http_url: str) -> None:
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [0], "datatype": "FP32", "data": []}],
                       "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]}).encode()
    status, headers, data = request(http_url, "POST", "/v2/models/var_py/infer", body)
    assert status == 200, data
    hlen = int(headers["inference-header-content-length"])
    out = json.loads(data[:hlen])["outputs"][0]
    assert out["shape"] == [0] and out["parameters"]["binary_data_size"] == 0 and len(data) == hlen
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [0], "datatype": "FP32", "parameters": {"binary_data_size": 0}}]}).encode()
    status, _, data = request(http_url, "POST", "/v2/models/var_py/infer", body, {"Inference-Header-Content-Length": str(len(body))})
    assert status == 200, data


def test_bytes_binary_element_framing_errors(http_url: str) -> None:
    good = serialize_byte_tensor(np.array([b"ab", b"c"], object)).item()
    for payload, shape in ((good[:-1], [2]), (good, [3]), (struct.pack("<I", 100) + b"x", [1])):
        header = json.dumps({"inputs": [{"name": "INPUT0", "shape": shape, "datatype": "BYTES",
                                         "parameters": {"binary_data_size": len(payload)}}]}).encode()
        status, _, data = request(http_url, "POST", "/v2/models/bytes_py/infer", header + payload,
                                  {"Inference-Header-Content-Length": str(len(header))})
        assert status == 400, data
