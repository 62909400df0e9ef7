"""Tracing: Triton's JSON trace file (rate, count, log_frequency, TENSORS, per-model settings, ensembles)
and OpenTelemetry spans exported over OTLP/HTTP to a collector the test runs on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tritonlite import InferenceEngine
from tritonlite.errors import InvalidArgumentError, NotFoundError
from tritonlite.tracing import parse_trace_config

from model_repos import IDENTITY_PY, identity_py_config, write_model
from otlp_collector import OtlpCollector as _Collector
from otlp_collector import span_attributes as _attrs

NAMES = ["REQUEST_START", "QUEUE_START", "COMPUTE_START", "COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START", "COMPUTE_END", "REQUEST_END"]

ENSEMBLE = """
    name: "ens"
    platform: "ensemble"
    max_batch_size: 0
    input [ { name: "IN" data_type: TYPE_FP32 dims: [ 4 ] } ]
    output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 4 ] } ]
    ensemble_scheduling { step [
      { model_name: "identity" model_version: -1 input_map { key: "INPUT0" value: "IN" } output_map { key: "OUTPUT0" value: "MID" } },
      { model_name: "other" model_version: -1 input_map { key: "INPUT0" value: "MID" } output_map { key: "OUTPUT0" value: "OUT" } }
    ] }
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trace_repo")
    write_model(root, "identity", identity_py_config("identity"), {"1/model.py": IDENTITY_PY})
    write_model(root, "other", identity_py_config("other"), {"1/model.py": IDENTITY_PY})
    write_model(root, "ens", ENSEMBLE)
    (root / "ens" / "1").mkdir()
    return root


X = np.arange(4, dtype=np.float32)


def _config(path: Path, *extra: str) -> list[str]:
    return ["level=TIMESTAMPS", "rate=1", f"triton,file={path}", *extra]


def _by_id(entries: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for e in entries:
        t = out.setdefault(e["id"], {"head": None, "stamps": [], "tensors": []})
        if "model_name" in e:
            t["head"] = e
        elif "timestamps" in e:
            t["stamps"].extend((s["name"], s["ns"]) for s in e["timestamps"])
        else:
            t["tensors"].append(e)
    return out


def test_triton_trace_file_has_tritons_shape_and_the_statistics_timestamps(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    with InferenceEngine(repo, trace_config=_config(path)) as engine:
        for i in range(3):
            engine.infer("identity", {"INPUT0": X}, request_id=f"r{i}")
        stats = engine.model_statistics("identity")["model_stats"][0]["inference_stats"]
        entries = json.loads(path.read_text())  # a valid JSON array while the engine runs
    traces = _by_id(entries)
    assert sorted(traces) == [1, 2, 3]
    for i, tid in enumerate(sorted(traces)):
        t = traces[tid]
        assert t["head"] == {"id": tid, "model_name": "identity", "model_version": 1, "request_id": f"r{i}"}
        assert [n for n, _ in t["stamps"]] == NAMES
        ns = [v for _, v in t["stamps"]]
        assert ns == sorted(ns) and all(isinstance(v, int) and v > 0 for v in ns)
    # the same points feed the statistics (DESIGN decision 7)
    stamp = [dict(traces[t]["stamps"]) for t in sorted(traces)]
    assert stats["queue"]["ns"] == sum(s["COMPUTE_START"] - s["QUEUE_START"] for s in stamp)
    assert stats["compute_infer"]["ns"] == sum(s["COMPUTE_OUTPUT_START"] - s["COMPUTE_INPUT_END"] for s in stamp)


def test_rate_and_count_sample_every_nth_until_the_count_is_used(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    with InferenceEngine(repo, trace_config=["level=TIMESTAMPS", "rate=2", "count=2", f"triton,file={path}"]) as engine:
        for i in range(7):
            engine.infer("identity", {"INPUT0": X}, request_id=str(i))
        assert engine.trace_settings()["trace_count"] == "0"
    # Triton writes a trace_count's traces to the first indexed file once they are all collected
    assert not path.exists()
    traces = _by_id(json.loads(Path(f"{path}.0").read_text()))
    assert [t["head"]["request_id"] for _, t in sorted(traces.items())] == ["1", "3"]


def test_log_frequency_rotates_into_indexed_files(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    with InferenceEngine(repo, trace_config=_config(path, "triton,log-frequency=2")) as engine:
        for i in range(5):
            engine.infer("identity", {"INPUT0": X}, request_id=str(i))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json.0", "t.json.1"]
    files = [json.loads((tmp_path / f"t.json.{k}").read_text()) for k in range(3)]
    ids = [[t["head"]["request_id"] for _, t in sorted(_by_id(f).items())] for f in files]
    assert ids == [["0", "1"], ["2", "3"], ["4"]]  # the rest is written at close
    assert not path.exists()


def test_tensors_level_records_queue_backend_input_and_output(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    with InferenceEngine(repo, trace_config=["level=TIMESTAMPS", "level=TENSORS", "rate=1", f"triton,file={path}"]) as engine:
        engine.infer("identity", {"INPUT0": np.array([1.5, -2, 3, 0.25], np.float32)})
    entries = json.loads(path.read_text())
    tensors = [e for e in entries if "activity" in e]
    assert [e["activity"] for e in tensors] == ["TENSOR_QUEUE_INPUT", "TENSOR_BACKEND_INPUT", "TENSOR_BACKEND_OUTPUT"]
    assert tensors[0] == {"id": 1, "activity": "TENSOR_QUEUE_INPUT",
                          "tensor": {"name": "INPUT0", "data": "1.5,-2,3,0.25", "shape": "4", "dtype": "FP32"}}
    assert tensors[2]["tensor"] == {"name": "OUTPUT0", "data": "1.5,-2,3,0.25", "shape": "4", "dtype": "FP32"}
    # tensors follow the timestamp that opens their phase
    order = [e["timestamps"][0]["name"] if "timestamps" in e else e.get("activity", "head") for e in entries]
    assert order.index("TENSOR_QUEUE_INPUT") == order.index("QUEUE_START") + 1
    assert order.index("TENSOR_BACKEND_OUTPUT") == order.index("COMPUTE_OUTPUT_START") + 1


def test_per_model_settings_and_off_writes_nothing(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    with InferenceEngine(repo, trace_config=[f"triton,file={path}", "rate=1"]) as engine:
        assert engine.tracer.active is False
        engine.infer("identity", {"INPUT0": X})
        assert not path.exists()
        got = engine.update_trace_settings({"trace_level": ["TIMESTAMPS"]}, "other")
        assert got["trace_level"] == ["TIMESTAMPS"] and got["trace_file"] == str(path)
        assert engine.trace_settings()["trace_level"] == ["OFF"]
        engine.infer("identity", {"INPUT0": X})
        engine.infer("other", {"INPUT0": X}, request_id="o")
        with pytest.raises(NotFoundError):
            engine.update_trace_settings({"trace_rate": "1"}, "ghost")
    traces = _by_id(json.loads(path.read_text()))
    assert [t["head"]["model_name"] for t in traces.values()] == ["other"]


def test_ensemble_steps_are_child_traces_with_parent_id(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    with InferenceEngine(repo, trace_config=_config(path)) as engine:
        out = engine.infer("ens", {"IN": X}, request_id="e")
        np.testing.assert_array_equal(out.as_numpy("OUT"), X)
    traces = _by_id(json.loads(path.read_text()))
    heads = sorted((t["head"] for t in traces.values()), key=lambda h: h["id"])
    assert heads[0] == {"id": 1, "model_name": "ens", "model_version": 1, "request_id": "e"}
    assert [(h["model_name"], h["parent_id"]) for h in heads[1:]] == [("identity", 1), ("other", 1)]
    assert [n for n, _ in traces[heads[1]["id"]]["stamps"]] == NAMES


@pytest.mark.parametrize("entries, message", [
    (["level"], "--trace-config option format is '[<mode>,]<setting>=<value>', got 'level'"),
    (["jaeger,url=x"], "invalid trace mode 'jaeger' in --trace-config 'jaeger,url=x': expected one of ['triton', 'opentelemetry']"),
    (["level=LOUD"], "invalid trace level 'LOUD': expected one of ['OFF', 'TIMESTAMPS', 'TENSORS']"),
    (["rate=-3"], "Unable to parse 'trace_rate': expect an unsigned integer, got '-3'"),
    (["mode=zipkin"], "invalid trace mode 'zipkin': expected one of ['triton', 'opentelemetry']"),
    (["triton,rate=1"], "unknown trace setting 'rate' in --trace-config"),
    (["opentelemetry,bsp_schedule_delay=soon"], "opentelemetry setting 'bsp_schedule_delay' expects an unsigned integer, got 'soon'"),
    (["opentelemetry,port=1"], "unknown opentelemetry trace setting 'port' (expected one of ['url', 'resource', 'bsp_max_queue_size', "
                               "'bsp_schedule_delay', 'bsp_max_export_batch_size'])"),
])
def test_bad_trace_config(entries: list[str], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        parse_trace_config(entries)
    assert err.value.message == message


def test_trace_config_mapping_form() -> None:
    trace, otel = parse_trace_config({"level": ["TIMESTAMPS"], "rate": 5, "file": "/tmp/x.json",
                                      "opentelemetry": {"url": "http://h:1/v1/traces", "resource": ["a=b"]}})
    assert trace == {"trace_level": ["TIMESTAMPS"], "trace_rate": "5", "trace_file": "/tmp/x.json"}
    assert otel == {"url": "http://h:1/v1/traces", "resource": ["a=b"]}


# ---- OpenTelemetry ---------------------------------------------------------------------------------------
@pytest.fixture
def collector() -> Iterator[_Collector]:
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    c = _Collector()
    yield c
    c.stop()


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


def test_opentelemetry_spans_over_http_grpc_and_grpc_streams_with_propagated_traceparent(repo: Path, collector: _Collector) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    grpcclient = pytest.importorskip("tritonclient.grpc")
    from tritonlite.grpc import GrpcServer
    from tritonlite.http import HttpServer

    config = ["mode=opentelemetry", "level=TIMESTAMPS", "rate=0", f"opentelemetry,url={collector.url}",
              "opentelemetry,resource=service.name=tl-test", "opentelemetry,bsp_schedule_delay=50"]
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
    engine = InferenceEngine(repo, trace_config=config)
    try:
        with HttpServer(engine, "127.0.0.1", 0) as http, GrpcServer(engine, "127.0.0.1", 0) as grpc:
            hc = httpclient.InferenceServerClient(f"127.0.0.1:{http.port}")
            inp = httpclient.InferInput("INPUT0", [4], "FP32")
            inp.set_data_from_numpy(X)
            assert hc.infer("identity", [inp], request_id="h1", headers={"traceparent": traceparent}).as_numpy("OUTPUT0").tolist() == X.tolist()
            hc.infer("identity", [inp], request_id="untraced")  # rate=0: only propagated contexts are traced
            hc.close()
            gc = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc.port}")
            ginp = grpcclient.InferInput("INPUT0", [4], "FP32")
            ginp.set_data_from_numpy(X)
            gc.infer("identity", [ginp], request_id="g1", headers={"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})
            done = threading.Event()
            streamed: list[Any] = []
            gc.start_stream(lambda result, error: (streamed.append(error or result), done.set()),
                            headers={"traceparent": f"00-{'ef' * 16}-{'12' * 8}-01"})
            gc.async_stream_infer("identity", [ginp], request_id="s1")
            assert done.wait(30)
            gc.stop_stream()
            gc.close()
            assert streamed[0].as_numpy("OUTPUT0").tolist() == X.tolist()
    finally:
        engine.close()  # shuts the provider down: every batched span is exported
    spans = collector.spans()
    assert sorted(s.name for _, s in spans) == ["InferRequest"] * 3 + ["compute"] * 3 + ["identity"] * 3
    resource = {kv.key: kv.value.string_value for kv in spans[0][0].attributes}
    assert resource["service.name"] == "tl-test"
    by_trace: dict[str, list[Any]] = {}
    for _, s in spans:
        by_trace.setdefault(s.trace_id.hex(), []).append(s)
    assert sorted(by_trace) == sorted([TRACE_ID, "ab" * 16, "ef" * 16])
    for tid, parent_span, rid in ((TRACE_ID, PARENT_SPAN, "h1"), ("ab" * 16, "cd" * 8, "g1"), ("ef" * 16, "12" * 8, "s1")):
        named = {s.name: s for s in by_trace[tid]}
        root, model, compute = named["InferRequest"], named["identity"], named["compute"]
        assert root.parent_span_id.hex() == parent_span  # the client's span is the parent
        assert model.parent_span_id == root.span_id and compute.parent_span_id == model.span_id
        attrs = _attrs(model)
        assert attrs["triton.model_name"] == "identity" and attrs["triton.model_version"] == 1
        assert attrs["triton.request_id"] == rid and attrs["triton.trace_parent_id"] == 0
        assert [e.name for e in model.events] == ["REQUEST_START", "QUEUE_START", "REQUEST_END"]
        assert [e.name for e in compute.events] == ["COMPUTE_START", "COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START", "COMPUTE_END"]
        assert root.start_time_unix_nano <= model.start_time_unix_nano <= compute.start_time_unix_nano
        assert compute.end_time_unix_nano <= model.end_time_unix_nano <= root.end_time_unix_nano


def test_opentelemetry_ensemble_steps_are_spans_under_the_ensemble(repo: Path, collector: _Collector) -> None:
    config = ["mode=opentelemetry", "level=TIMESTAMPS", "rate=1", f"opentelemetry,url={collector.url}"]
    with InferenceEngine(repo, trace_config=config) as engine:
        engine.infer("ens", {"IN": X})
    spans = {s.name: s for _, s in collector.spans()}
    assert set(spans) == {"InferRequest", "ens", "identity", "other", "compute"}
    assert spans["identity"].parent_span_id == spans["ens"].span_id == spans["other"].parent_span_id
    assert spans["ens"].parent_span_id == spans["InferRequest"].span_id
    assert _attrs(spans["other"])["triton.trace_parent_id"] == _attrs(spans["ens"])["triton.trace_id"]


def test_cli_trace_config_reaches_the_engine_and_a_bad_one_stops_the_server(repo: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tritonlite.cli import build_parser

    args = build_parser().parse_args(["serve", "--model-repository", "x", "--trace-config", "level=TIMESTAMPS",
                                      "--trace-config", "triton,file=/tmp/t.json"])
    assert args.trace_config == ["level=TIMESTAMPS", "triton,file=/tmp/t.json"]
    proc = subprocess.run([sys.executable, "-m", "tritonlite", "serve", "--model-repository", str(repo), "--trace-config", "rate=often",
                           "--allow-http", "false", "--allow-grpc", "false", "--allow-metrics", "false"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: creating server: Invalid argument - Unable to parse 'trace_rate': expect an unsigned integer, got 'often'")


def test_http_requests_add_tritons_http_timestamps(repo: Path, tmp_path: Path) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    from tritonlite.http import HttpServer

    path = tmp_path / "trace.json"
    with InferenceEngine(repo, trace_config=_config(path)) as engine, HttpServer(engine, "127.0.0.1", 0) as server:
        client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}")
        inp = httpclient.InferInput("INPUT0", [4], "FP32")
        inp.set_data_from_numpy(X)
        client.infer("identity", [inp], request_id="web")
        bad = httpclient.InferInput("INPUT0", [4], "FP32")
        bad.set_data_from_numpy(X)
        with pytest.raises(Exception):
            client.infer("identity", [bad], outputs=[httpclient.InferRequestedOutput("NOPE")], request_id="bad")
        client.close()
    traces = _by_id(json.loads(path.read_text()))
    web = next(t for t in traces.values() if t["head"]["request_id"] == "web")
    assert [n for n, _ in web["stamps"]] == ["HTTP_RECV_START", "HTTP_RECV_END", *NAMES, "INFER_RESPONSE_COMPLETE",
                                             "HTTP_SEND_START", "HTTP_SEND_END"]
    ns = [v for _, v in web["stamps"]]
    assert ns == sorted(ns)
    # a request that fails still leaves its trace (no send timestamps: the error response is not traced)
    failed = next(t for t in traces.values() if t["head"]["request_id"] == "bad")
    assert [n for n, _ in failed["stamps"]][:3] == ["HTTP_RECV_START", "HTTP_RECV_END", "REQUEST_START"]
    assert failed["stamps"][-1][0] == "REQUEST_END"
