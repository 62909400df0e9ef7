"""Model repository extension over HTTP (explicit control mode): index, load with config override
and base64 files, unload with unload_dependents, and the errors Triton returns."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

from http_models import ENSEMBLE_CFG  # noqa: E402
from http_raw import error_of, request  # noqa: E402
from model_repos import IDENTITY_PY, add_onnx_model, identity_py_config, onnx_models, write_model  # noqa: E402

from tritonlite import InferenceEngine  # noqa: E402
from tritonlite.http import HttpServer  # noqa: E402


@pytest.fixture(scope="module")
def explicit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    root = tmp_path_factory.mktemp("explicit") / "models"
    add_onnx_model(root)
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    write_model(root, "ens_add_sub", ENSEMBLE_CFG, {"1/.keep": ""})
    write_model(root, "broken_py", identity_py_config("broken_py"), {"1/model.py": "raise ImportError('no such lib')\n"})
    with InferenceEngine(root, model_control_mode="explicit", startup_models=["identity_py"]) as engine:
        with HttpServer(engine) as server:
            url = f"127.0.0.1:{server.port}"
            client = httpclient.InferenceServerClient(url)
            yield url, client
            client.close()


def _state(client: Any, name: str) -> list[tuple[str, str]]:
    return [(m.get("state", ""), m.get("reason", "")) for m in client.get_model_repository_index() if m["name"] == name]


def test_index_lists_every_model_directory(explicit: tuple[str, Any]) -> None:
    url, client = explicit
    index = client.get_model_repository_index()
    names = {m["name"] for m in index}
    assert {"add_sub_onnx", "identity_py", "ens_add_sub", "broken_py"} <= names
    assert {"name": "identity_py", "version": "1", "state": "READY"} in index
    assert {"name": "add_sub_onnx"} in index  # never loaded: name only
    status, _, body = request(url, "POST", "/v2/repository/index", json.dumps({"ready": True}))
    assert status == 200 and all(m["state"] == "READY" for m in json.loads(body))
    status, _, body = request(url, "POST", "/v2/repository/index", json.dumps({"ready": "yes"}))
    assert status == 400
    status, _, body = request(url, "POST", "/v2/repository/index", b"[1, 2")
    assert status == 400 and "failed to parse the request JSON buffer" in error_of(body)


def test_load_unload_and_unload_dependents(explicit: tuple[str, Any]) -> None:
    url, client = explicit
    client.load_model("ens_add_sub")  # loads add_sub_onnx with it
    assert client.is_model_ready("ens_add_sub") and client.is_model_ready("add_sub_onnx")
    a = np.ones((1, 16), np.float32)
    i0, i1 = httpclient.InferInput("A", [1, 16], "FP32"), httpclient.InferInput("B", [1, 16], "FP32")
    i0.set_data_from_numpy(a)
    i1.set_data_from_numpy(a)
    assert client.infer("ens_add_sub", [i0, i1]).as_numpy("SUM")[0, 0] == 2
    client.unload_model("ens_add_sub", unload_dependents=True)
    assert not client.is_model_ready("ens_add_sub") and not client.is_model_ready("add_sub_onnx")
    assert ("UNAVAILABLE", "unloaded") in _state(client, "ens_add_sub")
    status, _, body = request(url, "GET", "/v2/models/ens_add_sub/ready")  # known but unloaded: 400, not 404
    assert status == 400 and json.loads(body) == {"error": "Model version not ready"}
    status, _, body = request(url, "POST", "/v2/models/ens_add_sub/infer", json.dumps({"inputs": []}))
    assert status == 404 and "has no available versions" in json.loads(body)["error"]
    client.unload_model("never_loaded_model")  # a no-op, like Triton
    status, _, body = request(url, "POST", "/v2/repository/models/identity_py/unload",
                              json.dumps({"parameters": {"unload_dependents": "no"}}))
    assert status == 400


def test_load_with_config_override_and_files(explicit: tuple[str, Any], tmp_path: Path) -> None:
    url, client = explicit
    cfg = {"name": "uploaded", "platform": "onnxruntime_onnx", "max_batch_size": 8,
           "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [16]}, {"name": "INPUT1", "data_type": "TYPE_FP32", "dims": [16]}],
           "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [16]}, {"name": "OUTPUT1", "data_type": "TYPE_FP32", "dims": [16]}]}
    onnx_path = tmp_path / "model.onnx"
    onnx_models.add_sub(onnx_path)
    # tritonclient base64-encodes the file bytes itself
    client.load_model("uploaded", config=json.dumps(cfg), files={"file:1/model.onnx": onnx_path.read_bytes()})
    assert client.is_model_ready("uploaded")
    a = np.arange(16, dtype=np.float32).reshape(1, 16)
    i0, i1 = httpclient.InferInput("INPUT0", [1, 16], "FP32"), httpclient.InferInput("INPUT1", [1, 16], "FP32")
    i0.set_data_from_numpy(a)
    i1.set_data_from_numpy(a)
    np.testing.assert_array_equal(client.infer("uploaded", [i0, i1]).as_numpy("OUTPUT0"), 2 * a)
    # config override alone reloads an existing model with the new config
    cfg2 = json.loads(json.dumps(cfg))
    cfg2["name"], cfg2["max_batch_size"] = "add_sub_onnx", 2
    client.load_model("add_sub_onnx", config=json.dumps(cfg2))
    assert client.get_model_config("add_sub_onnx")["max_batch_size"] == 2
    client.unload_model("uploaded")
    client.unload_model("add_sub_onnx")


def test_load_errors(explicit: tuple[str, Any]) -> None:
    url, client = explicit
    with pytest.raises(InferenceServerException) as info:
        client.load_model("broken_py")
    assert info.value.status() == "400" and "broken_py" in info.value.message() and "no such lib" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        client.load_model("not_a_directory")
    assert info.value.status() == "500" and "failed to poll from model repository" in info.value.message()
    status, _, body = request(url, "POST", "/v2/repository/models/uploaded2/load",
                              json.dumps({"parameters": {"config": "{}", "file:1/model.onnx": "%%% not base64 %%%"}}))
    assert status == 400 and "base64" in error_of(body)
    status, _, body = request(url, "POST", "/v2/repository/models/identity_py/load", json.dumps({"parameters": {"bogus": 1}}))
    assert status == 400 and "unrecognized load parameter 'bogus'" in error_of(body)
    status, _, body = request(url, "POST", "/v2/repository/models/identity_py/load", json.dumps({"parameters": {"config": {"a": 1}}}))
    assert status == 400
    # Triton: a bad override fails the poll of the model (500, "failed to poll from model repository")
    poll_failed = "failed to load 'identity_py', failed to poll from model repository: "
    status, _, body = request(url, "POST", "/v2/repository/models/identity_py/load", json.dumps({"parameters": {"config": "{not json"}}))
    assert status == 500 and error_of(body).startswith(poll_failed + "Invalid config override: ")
    files = {"file:1/model.py": base64.b64encode(IDENTITY_PY.encode()).decode()}
    status, _, body = request(url, "POST", "/v2/repository/models/identity_py/load", json.dumps({"parameters": files}))
    assert status == 500 and error_of(body) == poll_failed + "the model config must be provided along with model files"


def test_load_refused_outside_explicit_mode(http_client: Any) -> None:
    with pytest.raises(InferenceServerException) as info:
        http_client.load_model("identity_py")
    assert info.value.status() == "503" and "explicit model load / unload is not allowed" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        http_client.unload_model("identity_py")
    assert info.value.status() == "503"
