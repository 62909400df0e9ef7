"""System shared memory over HTTP with tritonclient.utils.shared_memory: register/status/unregister,
inputs and outputs in regions (offsets included), Triton's errors, the disabled default (501) and
CUDA shared memory refused clearly without a GPU."""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Iterator

import numpy as np
import pytest

httpclient = pytest.importorskip("tritonclient.http")
import tritonclient.utils.shared_memory as shm  # noqa: E402
from tritonclient.utils import InferenceServerException, serialize_byte_tensor  # noqa: E402

from http_raw import error_of, request  # noqa: E402

from tritonlite.http import HttpServer  # noqa: E402
from tritonlite.protocol.shm import SHM_DISABLED  # noqa: E402


@pytest.fixture
def regions(http_client: Any) -> Iterator[list[Any]]:
    handles: list[Any] = []
    yield handles
    http_client.unregister_system_shared_memory()
    for h in handles:
        shm.destroy_shared_memory_region(h)


def _key(tag: str) -> str:
    return f"/tl_http_{os.getpid()}_{tag}"


def test_inputs_and_outputs_in_shared_memory(http_client: Any, regions: list[Any]) -> None:
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    b = np.full((2, 16), 2, np.float32)
    ip = shm.create_shared_memory_region("in_data", _key("in"), 256 + 64)
    op = shm.create_shared_memory_region("out_data", _key("out"), 512)
    regions += [ip, op]
    shm.set_shared_memory_region(ip, [a, b])  # a at 0, b at 128
    http_client.register_system_shared_memory("in_data", _key("in"), 256 + 64)
    http_client.register_system_shared_memory("out_data", _key("out"), 512, offset=0)
    status = http_client.get_system_shared_memory_status()
    assert {r["name"] for r in status} == {"in_data", "out_data"}
    assert http_client.get_system_shared_memory_status("in_data") == [{"name": "in_data", "key": _key("in"), "offset": 0, "byte_size": 320}]

    i0, i1 = httpclient.InferInput("INPUT0", [2, 16], "FP32"), httpclient.InferInput("INPUT1", [2, 16], "FP32")
    i0.set_shared_memory("in_data", 128)
    i1.set_shared_memory("in_data", 128, offset=128)
    o0, o1 = httpclient.InferRequestedOutput("OUTPUT0", binary_data=False), httpclient.InferRequestedOutput("OUTPUT1", binary_data=False)
    o0.set_shared_memory("out_data", 128)
    o1.set_shared_memory("out_data", 128, offset=256)
    result = http_client.infer("add_sub_onnx", [i0, i1], outputs=[o0, o1])
    for out in result.get_response()["outputs"]:  # shm outputs: name, datatype, shape only (+ the shm parameters)
        assert "data" not in out and out["shape"] == [2, 16]
        assert "binary_data_size" not in out.get("parameters", {})
    np.testing.assert_array_equal(shm.get_contents_as_numpy(op, np.float32, [2, 16], offset=0), a + b)
    np.testing.assert_array_equal(shm.get_contents_as_numpy(op, np.float32, [2, 16], offset=256), a - b)

    # mixed: one input in shm, one binary; one output in shm, one returned
    i1b = httpclient.InferInput("INPUT1", [2, 16], "FP32")
    i1b.set_data_from_numpy(b)
    result = http_client.infer("add_sub_onnx", [i0, i1b], outputs=[o0, httpclient.InferRequestedOutput("OUTPUT1")])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)

    http_client.unregister_system_shared_memory("in_data")
    assert [r["name"] for r in http_client.get_system_shared_memory_status()] == ["out_data"]
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("add_sub_onnx", [i0, i1])
    assert info.value.status() == "404" and "Unable to find shared memory region: 'in_data'" in info.value.message()


def test_bytes_through_shared_memory(http_client: Any, regions: list[Any]) -> None:
    values = np.array([b"alpha", b"be", b""], dtype=object)
    raw = serialize_byte_tensor(values)
    size = len(raw.item())
    h = shm.create_shared_memory_region("bytes_in", _key("bytes"), 1024)
    regions.append(h)
    shm.set_shared_memory_region(h, [raw])
    http_client.register_system_shared_memory("bytes_in", _key("bytes"), 1024)
    i0 = httpclient.InferInput("INPUT0", [3], "BYTES")
    i0.set_shared_memory("bytes_in", size)
    o0 = httpclient.InferRequestedOutput("OUTPUT0")
    o0.set_shared_memory("bytes_in", 512, offset=512)
    http_client.infer("bytes_py", [i0], outputs=[o0])
    assert shm.get_contents_as_numpy(h, np.object_, [3], offset=512).tolist() == values.tolist()


def test_shared_memory_errors(http_client: Any, http_url: str, regions: list[Any]) -> None:
    h = shm.create_shared_memory_region("small", _key("small"), 64)
    regions.append(h)
    with pytest.raises(InferenceServerException) as info:
        http_client.register_system_shared_memory("small", _key("small"), 128)
    assert info.value.status() == "400" and "failed to register shared memory region 'small': invalid args" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        http_client.register_system_shared_memory("nokey", _key("does_not_exist"), 16)
    assert "Unable to open shared memory region" in info.value.message()
    http_client.register_system_shared_memory("small", _key("small"), 32, offset=16)
    with pytest.raises(InferenceServerException) as info:
        http_client.register_system_shared_memory("small", _key("small"), 32)
    assert info.value.status() == "400" and "shared memory region 'small' already in manager" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        http_client.get_system_shared_memory_status("unknown_region")
    assert info.value.status() == "404" and "Unable to find system shared memory region: 'unknown_region'" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        http_client.register_system_shared_memory("reserved", "/triton_python_backend_shm_region_x", 16)
    assert "reserved" in info.value.message()

    x = httpclient.InferInput("INPUT0", [4], "FP32")
    x.set_shared_memory("small", 16, offset=32)  # offset == region size
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("identity_py", [x])
    assert "Invalid offset for shared memory region: 'small'" in info.value.message()
    x.set_shared_memory("small", 16, offset=24)
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("identity_py", [x])
    assert "Invalid offset + byte size for shared memory region: 'small'" in info.value.message()
    x = httpclient.InferInput("INPUT0", [4], "FP32")  # (set_shared_memory keeps an earlier offset)
    x.set_shared_memory("small", 16)
    o = httpclient.InferRequestedOutput("OUTPUT0")
    o.set_shared_memory("small", 8)
    with pytest.raises(InferenceServerException) as info:
        http_client.infer("identity_py", [x], outputs=[o])
    assert "should be at least 16 bytes to hold the results" in info.value.message()

    # both data and a region on one input; binary_data/classification with a region on one output
    body = {"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4],
                        "parameters": {"shared_memory_region": "small", "shared_memory_byte_size": 16}}]}
    status, _, data = request(http_url, "POST", "/v2/models/identity_py/infer", json.dumps(body))
    assert status == 400 and "Input must set only one of the following fields" in error_of(data)
    for extra in ({"binary_data": True}, {"classification": 2}):
        body = {"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
                "outputs": [{"name": "OUTPUT0", "parameters": {"shared_memory_region": "small", "shared_memory_byte_size": 16, **extra}}]}
        status, _, data = request(http_url, "POST", "/v2/models/identity_py/infer", json.dumps(body))
        assert status == 400, data
    body = {"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32", "parameters": {"shared_memory_region": "small"}}]}
    status, _, data = request(http_url, "POST", "/v2/models/identity_py/infer", json.dumps(body))
    assert status == 400 and "shared_memory_byte_size" in error_of(data)
    for bad in ({"key": _key("small")}, {"byte_size": 16}, {"key": 5, "byte_size": 16}, {"key": _key("small"), "byte_size": -1}):
        status, _, data = request(http_url, "POST", "/v2/systemsharedmemory/region/bad/register", json.dumps(bad))
        assert status == 400, bad
    http_client.unregister_system_shared_memory("not_registered")  # no-op, like Triton


def test_cuda_shared_memory_is_refused_clearly_without_gpu(http_client: Any, http_url: str) -> None:
    try:
        import cuda.bindings.runtime as cudart  # noqa: F401

        err, count = cudart.cudaGetDeviceCount()
        if int(err) == 0 and count > 0:
            pytest.skip("a GPU is present; CUDA shm is exercised by the GPU check")
    except ImportError:
        pass
    assert http_client.get_cuda_shared_memory_status() == []
    body = {"raw_handle": {"b64": base64.b64encode(b"\0" * 64).decode()}, "device_id": 0, "byte_size": 64}
    status, _, data = request(http_url, "POST", "/v2/cudasharedmemory/region/gpu0/register", json.dumps(body))
    assert status == 400 and "CUDA shared memory is not available" in error_of(data)
    body["raw_handle"] = {"b64": base64.b64encode(b"\0" * 10).decode()}
    status, _, data = request(http_url, "POST", "/v2/cudasharedmemory/region/gpu0/register", json.dumps(body))
    assert status == 400 and "64-byte" in error_of(data)
    body["raw_handle"] = {"b64": "!!!"}
    status, _, data = request(http_url, "POST", "/v2/cudasharedmemory/region/gpu0/register", json.dumps(body))
    assert status == 400 and "base64" in error_of(data)
    status, _, data = request(http_url, "GET", "/v2/cudasharedmemory/region/gpu0/status")
    assert status == 404


def test_shared_memory_disabled_by_default(http_engine: Any) -> None:
    with HttpServer(http_engine) as server:
        url = f"127.0.0.1:{server.port}"
        c = httpclient.InferenceServerClient(url)
        try:
            assert c.get_system_shared_memory_status() == []  # status still works
            with pytest.raises(InferenceServerException) as info:
                c.register_system_shared_memory("r", "/whatever", 16)
            assert info.value.status() == "501" and info.value.message() == SHM_DISABLED
            with pytest.raises(InferenceServerException) as info:
                c.unregister_system_shared_memory()
            assert info.value.status() == "501"
            status, _, _ = request(url, "POST", "/v2/cudasharedmemory/region/r/register", "{}")
            assert status == 501
        finally:
            c.close()


CUDA_CLIENT = r'''
import base64, ctypes, sys
import numpy as np
import cuda.bindings.runtime as rt

def ok(res):
    assert res[0] == rt.cudaError_t.cudaSuccess, res
    return res[1] if len(res) > 1 else None

ok(rt.cudaSetDevice(0))
ptr = ok(rt.cudaMalloc(1024))
x = np.arange(64, dtype=np.float32)
ok(rt.cudaMemcpy(ptr, x.ctypes.data, 256, rt.cudaMemcpyKind.cudaMemcpyHostToDevice))
h = ok(rt.cudaIpcGetMemHandle(ptr))
print(base64.b64encode(bytes((ctypes.c_char * 64).from_address(h.getPtr()))).decode(), flush=True)
sys.stdin.readline()
out = np.empty(64, np.float32)
ok(rt.cudaMemcpy(out.ctypes.data, int(ptr) + 256, 256, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost))
print("OK" if np.array_equal(out, x) else f"BAD {out[:8]}", flush=True)
sys.stdin.readline()
'''


@pytest.mark.gpu
def test_cuda_shared_memory_round_trip_on_a_gpu(http_url: str, http_client: Any) -> None:
    """A client process owns the CUDA buffer (IPC handles cannot be opened in the process that made them)."""
    import subprocess
    import sys

    try:
        import cuda.bindings.runtime as cudart

        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count < 1:
            raise ImportError("no GPU")
    except ImportError:
        pytest.skip("needs cuda-python and an NVIDIA GPU")
    child = subprocess.Popen([sys.executable, "-c", CUDA_CLIENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        handle = child.stdout.readline().strip()  # type: ignore[union-attr]
        body = {"raw_handle": {"b64": handle}, "device_id": 0, "byte_size": 1024}
        assert request(http_url, "POST", "/v2/cudasharedmemory/region/gpu_r/register", json.dumps(body))[0] == 200
        assert http_client.get_cuda_shared_memory_status("gpu_r") == [{"name": "gpu_r", "device_id": 0, "byte_size": 1024}]
        status, _, data = request(http_url, "GET", "/v2/systemsharedmemory/region/gpu_r/status")
        assert status == 404 and "registered as CUDA shared memory" in error_of(data)
        x = httpclient.InferInput("INPUT0", [64], "FP32")
        x.set_shared_memory("gpu_r", 256)
        o = httpclient.InferRequestedOutput("OUTPUT0")
        o.set_shared_memory("gpu_r", 256, offset=256)
        http_client.infer("var_py", [x], outputs=[o])
        child.stdin.write("\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        assert child.stdout.readline().strip() == "OK"  # type: ignore[union-attr]
        http_client.unregister_cuda_shared_memory("gpu_r")
        assert http_client.get_cuda_shared_memory_status() == []
    finally:
        try:
            child.stdin.write("\n")  # type: ignore[union-attr]
            child.stdin.flush()  # type: ignore[union-attr]
        except OSError:
            pass
        child.wait(timeout=30)
