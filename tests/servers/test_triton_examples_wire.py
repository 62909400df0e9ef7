"""Issue 16 over the wire, with the real tritonclient as Triton's example clients use it: BLS with a bytes model
name, int64 outputs of INT32-declared outputs (unary, decoupled, BLS, ensemble; HTTP binary/JSON, gRPC unary and
stream) labelled as what they are, and the model-control errors Triton's simple_*_model_control examples expect."""

from __future__ import annotations

import queue
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")

import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from model_repos import build_triton_example_models, write_model  # noqa: E402

from tritonlite import InferenceEngine  # noqa: E402
from tritonlite.grpc import GrpcServer  # noqa: E402
from tritonlite.http import HttpServer  # noqa: E402
from tritonlite.protocol.shm import SHM_DISABLED  # noqa: E402

CONTROL_CONFIG = """
    name: "control_me"
    backend: "python"
    input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
    output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
"""
CONTROL_PY = """
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())])
                for r in requests]
"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    root = build_triton_example_models(tmp_path_factory.mktemp("examples_wire") / "models")
    write_model(root, "control_me", CONTROL_CONFIG, {"1/model.py": CONTROL_PY})
    with InferenceEngine(root, model_control_mode="explicit", startup_models=["*"]) as engine:
        with HttpServer(engine, "127.0.0.1", 0) as http, GrpcServer(engine, "127.0.0.1", 0) as grpc_server:
            h = httpclient.InferenceServerClient(f"127.0.0.1:{http.port}", network_timeout=30.0)
            g = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_server.port}")
            yield h, g
            h.close()
            g.close()


def _inputs(mod: Any, arrays: dict[str, np.ndarray]) -> list[Any]:
    out = []
    for name, arr in arrays.items():
        datatype = "BYTES" if arr.dtype == np.object_ else {np.dtype(np.int32): "INT32", np.dtype(np.float32): "FP32"}[arr.dtype]
        inp = mod.InferInput(name, list(arr.shape), datatype)
        inp.set_data_from_numpy(arr)
        out.append(inp)
    return out


def _each_door(servers: tuple[Any, Any], model: str, arrays: dict[str, np.ndarray], output: str) -> list[tuple[str, Any]]:
    """(datatype, array) of ``output`` via HTTP binary, HTTP JSON and gRPC, the output requested by name."""
    h, g = servers
    seen = []
    for binary in (True, False):
        r = h.infer(model, _inputs(httpclient, arrays), outputs=[httpclient.InferRequestedOutput(output, binary_data=binary)])
        seen.append((r.get_output(output)["datatype"], r.as_numpy(output)))
    r = g.infer(model, _inputs(grpcclient, arrays), outputs=[grpcclient.InferRequestedOutput(output)])
    seen.append((r.get_output(output).datatype, r.as_numpy(output)))
    return seen


# ---- examples/bls: the model name travels as a BYTES tensor --------------------------------------------
def test_bls_sync_example_client(servers: tuple[Any, Any]) -> None:
    a, b = np.array([1, 2, 3, 4], np.float32), np.array([0.5, 0.5, 0.5, 0.5], np.float32)
    arrays = {"MODEL_NAME": np.array(["add_sub"], dtype=np.object_), "INPUT0": a, "INPUT1": b}
    for output, expected in (("OUTPUT0", a + b), ("OUTPUT1", a - b)):
        for datatype, got in _each_door(servers, "bls_sync", arrays, output):
            assert datatype == "FP32" and got.dtype == np.float32
            np.testing.assert_array_equal(got, expected)


# ---- declared TYPE_INT32, returned int64: labelled INT64 with int64 data on every door -----------------
@pytest.mark.parametrize(("model", "output", "expected"), [
    ("bls_decoupled_sync", "SUM", lambda n: n * n),
    ("bls_decoupled_async", "SUM", lambda n: 2 * n * n),
    ("widen_int32", "OUT", lambda n: 2 * n),
    ("ens_widen", "WIDE", lambda n: 2 * n),
])
def test_int64_output_of_an_int32_declaration_is_labelled_int64(servers: tuple[Any, Any], model: str, output: str,
                                                                  expected: Any) -> None:
    for n in (4, 0):
        for datatype, got in _each_door(servers, model, {"IN": np.array([n], np.int32)}, output):
            assert datatype == "INT64" and got.dtype == np.int64 and got.tolist() == [expected(n)]


def test_decoupled_stream_labels_int64(servers: tuple[Any, Any]) -> None:
    _, g = servers
    got: queue.Queue = queue.Queue()
    g.start_stream(callback=lambda result, error: got.put((result, error)))
    try:
        g.async_stream_infer("widen_int32_decoupled", _inputs(grpcclient, {"IN": np.array([3], np.int32)}),
                             outputs=[grpcclient.InferRequestedOutput("OUT")])
        results = [got.get(timeout=10) for _ in range(3)]
    finally:
        g.stop_stream()
    assert [e for _, e in results] == [None, None, None]
    assert [r.get_output("OUT").datatype for r, _ in results] == ["INT64"] * 3
    assert [r.as_numpy("OUT").tolist() for r, _ in results] == [[0], [1], [2]]


def test_ensemble_step_refusal_reaches_the_client(servers: tuple[Any, Any]) -> None:
    h, g = servers
    for client, mod, status in ((h, httpclient, "400"), (g, grpcclient, "StatusCode.INVALID_ARGUMENT")):
        with pytest.raises(InferenceServerException) as info:
            client.infer("ens_widen_then_int32", _inputs(mod, {"IN": np.array([1], np.int32)}))
        assert info.value.status() == status
        assert "inference input 'IN' data-type is 'INT64', but model 'identity_int32' expects 'INT32'" in info.value.message()


# ---- simple_{http,grpc}_model_control: Triton's load-failure texts --------------------------------------
def test_model_control_errors_as_triton_examples_expect(servers: tuple[Any, Any]) -> None:
    poll_failed = "failed to load 'control_me', failed to poll from model repository"
    for client, status in ((servers[0], "500"), (servers[1], "StatusCode.INTERNAL")):
        with pytest.raises(InferenceServerException) as info:  # the examples' malformed override
            client.load_model("control_me", config='"parameters": {"config": {{"max_batch_size": "16"}}}')
        assert info.value.status() == status
        assert info.value.message().startswith(f"{poll_failed}: Invalid config override: ")
        with pytest.raises(InferenceServerException) as info:  # one path component over NAME_MAX
            client.load_model("control_me", config="{}", files={"file:" + "A" * 256: b"a"})
        assert info.value.status() == status
        assert info.value.message() == f"{poll_failed}: file '{'A' * 60}...' could not be written: File name too long"
        with pytest.raises(InferenceServerException) as info:
            client.load_model("control_me", files={"file:1/model.py": b"x"})
        assert info.value.message() == f"{poll_failed}: the model config must be provided along with model files"
        with pytest.raises(InferenceServerException) as info:
            client.load_model("wrong_model_name")
        assert info.value.message() == "failed to load 'wrong_model_name', failed to poll from model repository"
        # the server and the model that was serving are untouched
        assert client.is_server_live() and client.is_model_ready("control_me")
    r = servers[1].infer("control_me", _inputs(grpcclient, {"IN": np.array([7], np.int32)}))
    assert r.as_numpy("OUT").tolist() == [7]


def test_shared_memory_refusal_names_the_switch(servers: tuple[Any, Any]) -> None:
    assert "'--allow-client-shm true'" in SHM_DISABLED and "allow_shm=True" in SHM_DISABLED
    for client, status in ((servers[0], "501"), (servers[1], "StatusCode.UNIMPLEMENTED")):
        with pytest.raises(InferenceServerException) as info:
            client.register_system_shared_memory("region", "/tritonlite_issue16", 64)
        assert info.value.status() == status and info.value.message() == SHM_DISABLED
