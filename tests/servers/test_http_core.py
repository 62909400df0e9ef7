"""HTTP core protocol with the real tritonclient: health, metadata, config, readiness, statistics,
routing (SPEC §1.1: order, 404, 405), logging and trace settings."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

from http_raw import error_of, request  # noqa: E402


def test_health_bodies_are_empty(http_url: str, http_client: Any) -> None:
    assert http_client.is_server_live() and http_client.is_server_ready()
    for path in ("/v2/health/live", "/v2/health/ready"):
        status, headers, body = request(http_url, "GET", path)
        assert (status, body, headers["content-length"]) == (200, b"", "0")


def test_server_metadata(http_client: Any) -> None:
    meta = http_client.get_server_metadata()
    assert meta["name"] == "triton"
    for ext in ("binary_tensor_data", "classification", "model_repository", "system_shared_memory", "statistics",
                "sequence", "schedule_policy", "parameters", "logging", "trace"):
        assert ext in meta["extensions"]


def test_model_metadata_and_versions(http_client: Any) -> None:
    meta = http_client.get_model_metadata("add_sub_onnx")
    assert meta == {
        "name": "add_sub_onnx", "versions": ["1"], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 16]}, {"name": "INPUT1", "datatype": "FP32", "shape": [-1, 16]}],
        "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [-1, 16]}, {"name": "OUTPUT1", "datatype": "FP32", "shape": [-1, 16]}],
    }
    assert http_client.get_model_metadata("identity_py", "1")["platform"] == "python"
    assert http_client.get_model_metadata("bytes_py")["inputs"][0]["datatype"] == "BYTES"
    assert http_client.get_model_metadata("ens_add_sub")["platform"] == "ensemble"
    with pytest.raises(InferenceServerException) as info:
        http_client.get_model_metadata("no_such_model")
    assert info.value.status() == "404" and "Request for unknown model: 'no_such_model' is not found" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        http_client.get_model_metadata("identity_py", "7")
    assert info.value.status() == "404"


def test_model_config_is_triton_json(http_client: Any) -> None:
    cfg = http_client.get_model_config("add_sub_onnx")
    assert cfg["name"] == "add_sub_onnx" and cfg["max_batch_size"] == 8
    assert cfg["input"][0]["data_type"] == "TYPE_FP32" and cfg["input"][0]["dims"] == [16]
    assert cfg["instance_group"][0]["count"] == 2
    assert http_client.get_model_config("identity_py", "1")["backend"] == "python"


def test_model_ready(http_url: str, http_client: Any) -> None:
    assert http_client.is_model_ready("identity_py")
    assert http_client.is_model_ready("identity_py", "1")
    assert not http_client.is_model_ready("no_such_model")
    status, _, body = request(http_url, "GET", "/v2/models/identity_py/ready")
    assert (status, body) == (200, b"")
    status, _, body = request(http_url, "GET", "/v2/models/no_such_model/ready")
    assert status == 404 and "is not found" in error_of(body)
    status, _, body = request(http_url, "GET", "/v2/models/identity_py/versions/9/ready")
    assert status == 404


def test_statistics(http_client: Any, http_url: str) -> None:
    x = np.ones(4, np.float32)
    inp = httpclient.InferInput("INPUT0", [4], "FP32")
    inp.set_data_from_numpy(x)
    before = http_client.get_inference_statistics("identity_py")["model_stats"][0]["inference_count"]
    http_client.infer("identity_py", [inp])
    stats = http_client.get_inference_statistics("identity_py", "1")["model_stats"]
    assert len(stats) == 1 and stats[0]["name"] == "identity_py" and stats[0]["version"] == "1"
    assert stats[0]["inference_count"] == before + 1
    assert stats[0]["inference_stats"]["success"]["count"] >= 1
    every = http_client.get_inference_statistics()["model_stats"]
    assert {"identity_py", "add_sub_onnx"} <= {s["name"] for s in every}
    status, _, body = request(http_url, "GET", "/v2/models/no_such_model/stats")
    assert status == 400 and "requested model 'no_such_model' is not available" in error_of(body)


@pytest.mark.parametrize(
    "method,path,status",
    [
        ("GET", "/", 404),
        ("GET", "/v1/models", 404),
        ("GET", "/v2/models", 404),
        ("GET", "/v2/health/alive", 404),
        ("GET", "/v2/models/identity_py/versions/one", 404),  # versions must be digits
        ("GET", "/v2/models/identity_py/versions/1/trace/setting", 404),  # no version on trace
        ("GET", "/v2/models/identity_py/bogus", 404),
        ("GET", "/v2/systemsharedmemory/bogus", 404),
        ("POST", "/v2/health/live", 405),
        ("DELETE", "/v2", 405),
        ("GET", "/v2/models/identity_py/infer", 405),
        ("POST", "/v2/models/identity_py", 405),
        ("POST", "/v2/models/stats", 405),
        ("PUT", "/v2/logging", 405),
        ("GET", "/v2/repository/index", 405),
        ("POST", "/v2/systemsharedmemory/status", 405),
        ("GET", "/v2/systemsharedmemory/region/r/register", 405),
        ("DELETE", "/v2/trace/setting", 405),
    ],
)
def test_routing_404_405(http_url: str, method: str, path: str, status: int) -> None:
    got, headers, body = request(http_url, method, path)
    assert got == status
    # as Triton 2.51: every 404 and the 405s of health, readiness and infer are text/plain
    plain = status == 404 or path in ("/v2/health/live", "/v2/models/identity_py/infer")
    assert headers["content-type"] == ("text/plain" if plain else "application/json")
    assert error_of(body) == ("Not Found" if status == 404 else "Method Not Allowed")


def test_stats_route_shadows_a_model_named_stats(http_url: str) -> None:
    status, _, body = request(http_url, "GET", "/v2/models/stats")
    assert status == 200 and "model_stats" in json.loads(body)


def test_percent_encoded_model_name_and_query_string(http_url: str) -> None:
    status, _, body = request(http_url, "GET", "/v2/models/identity%5Fpy?x=1")
    assert status == 200 and json.loads(body)["name"] == "identity_py"


def test_repository_name_is_unsupported(http_url: str) -> None:
    status, _, body = request(http_url, "POST", "/v2/repository/other/index")
    assert status == 501 and "'repository_name' specification is not supported" in error_of(body)


def test_url_path_prefix_in_client_is_routed_by_path(http_url: str) -> None:
    # tritonclient prepends a URL path prefix; without a proxy in front it is simply an unknown route
    c = httpclient.InferenceServerClient(http_url + "/prefix")
    try:
        with pytest.raises(InferenceServerException):
            c.get_server_metadata()
    finally:
        c.close()


def test_logging_settings_round_trip(http_client: Any, http_url: str) -> None:
    settings = http_client.get_log_settings()
    assert settings == {"log_file": "", "log_info": True, "log_warning": True, "log_error": True,
                        "log_verbose_level": 0, "log_format": "default"}
    updated = http_client.update_log_settings({"log_verbose_level": 2, "log_info": False, "log_format": "ISO8601"})
    assert updated["log_verbose_level"] == 2 and updated["log_info"] is False and updated["log_format"] == "ISO8601"
    assert http_client.get_log_settings() == updated
    http_client.update_log_settings({"log_verbose_level": 0, "log_info": True, "log_format": "default", "log_error": None})
    status, _, body = request(http_url, "POST", "/v2/logging", json.dumps({"log_file": "/tmp/x.log"}))
    assert status == 501
    status, _, body = request(http_url, "POST", "/v2/logging", json.dumps({"log_info": "yes"}))
    assert status == 400
    status, _, body = request(http_url, "POST", "/v2/logging", json.dumps({"log_verbose_level": -1}))
    assert status == 400
    status, _, body = request(http_url, "POST", "/v2/logging", json.dumps({"log_format": "json"}))
    assert status == 503  # Triton's code answers an unknown format with UNAVAILABLE
    status, _, body = request(http_url, "POST", "/v2/logging", b"{not json")
    assert status == 400 and "failed to parse the request JSON buffer" in error_of(body)


def test_trace_settings_global_and_per_model(http_client: Any, http_url: str) -> None:
    glob = http_client.get_trace_settings()
    assert glob["trace_level"] == ["OFF"] and glob["trace_rate"] == "1000" and glob["trace_count"] == "-1"
    assert glob["trace_mode"] == "triton" and glob["log_frequency"] == "0"
    model = http_client.update_trace_settings("identity_py", {"trace_rate": "5", "trace_level": ["TIMESTAMPS"]})
    assert model["trace_rate"] == "5" and model["trace_level"] == ["TIMESTAMPS"]
    assert http_client.get_trace_settings()["trace_rate"] == "1000"  # global untouched
    assert http_client.get_trace_settings("identity_py")["trace_rate"] == "5"
    cleared = http_client.update_trace_settings("identity_py", {"trace_rate": None})
    assert cleared["trace_rate"] == "1000"
    g = http_client.update_trace_settings(settings={"trace_count": "10"})
    assert g["trace_count"] == "10"
    http_client.update_trace_settings(settings={"trace_count": None, "trace_level": None})
    for bad, code in (({"trace_rate": 5}, 400), ({"trace_level": ["OFF", "TENSORS"]}, 400), ({"trace_count": "-2"}, 400),
                      ({"trace_file": "/tmp/t"}, 501), ({"trace_level": ["LOUD"]}, 400)):
        status, _, body = request(http_url, "POST", "/v2/trace/setting", json.dumps(bad))
        assert status == code, (bad, body)
    status, _, body = request(http_url, "GET", "/v2/models/no_such_model/trace/setting")
    assert status == 404
