"""Triton's gRPC frontend timestamps in traces (GRPC_WAITREAD_*, INFER_RESPONSE_COMPLETE, GRPC_SEND_*),
through the gRPC server with the official tritonclient: unary, errors, deadlines, streams, decoupled
streams, and OpenTelemetry root-span events (Triton's L0_trace expectations)."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tritonlite import InferenceEngine

from model_repos import IDENTITY_PY, identity_py_config, write_model

grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
from tritonlite.grpc import GrpcServer  # noqa: E402

NAMES = ["REQUEST_START", "QUEUE_START", "COMPUTE_START", "COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START", "COMPUTE_END", "REQUEST_END"]
READ = ["GRPC_WAITREAD_START", "GRPC_WAITREAD_END"]
SEND = ["GRPC_SEND_START", "GRPC_SEND_END"]

SLOW_PY = """
import time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        time.sleep(0.5)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
                for r in requests]
"""

# decoupled: INPUT0=[n, ...] answers n responses, then the final flag alone
REPEAT_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            sender = r.get_response_sender()
            for i in range(int(x[0])):
                sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x + i)]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
"""

X = np.arange(4, dtype=np.float32)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grpc_trace_repo")
    write_model(root, "identity", identity_py_config("identity"), {"1/model.py": IDENTITY_PY})
    write_model(root, "slow", identity_py_config("slow"), {"1/model.py": SLOW_PY})
    write_model(root, "repeat", identity_py_config("repeat", extra="model_transaction_policy { decoupled: true }"),
                {"1/model.py": REPEAT_PY})
    return root


@pytest.fixture
def served(repo: Path, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    path = tmp_path / "trace.json"
    engine = InferenceEngine(repo, trace_config=["level=TIMESTAMPS", "rate=1", f"triton,file={path}"])
    try:
        with GrpcServer(engine, "127.0.0.1", 0) as server:
            client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.port}")
            try:
                yield client, path
            finally:
                client.close()
    finally:
        engine.close()


def _input(values: np.ndarray) -> Any:
    inp = grpcclient.InferInput("INPUT0", list(values.shape), "FP32")
    inp.set_data_from_numpy(values)
    return inp


def _traces(path: Path) -> dict[str, list[tuple[str, int]]]:
    """request id -> its root trace's timestamps in file order."""
    entries = json.loads(path.read_text())
    rid = {e["id"]: e.get("request_id", "") for e in entries if "model_name" in e}
    out: dict[str, list[tuple[str, int]]] = {}
    for e in entries:
        for s in e.get("timestamps", []):
            out.setdefault(rid[e["id"]], []).append((s["name"], s["ns"]))
    return out


def test_unary_request_has_tritons_grpc_timestamps_in_order(served: tuple[Any, Path]) -> None:
    client, path = served
    out = client.infer("identity", [_input(X)], request_id="u1")
    assert out.as_numpy("OUTPUT0").tolist() == X.tolist()
    stamps = _wait_trace(path, "u1")
    assert [n for n, _ in stamps] == [*READ, *NAMES, "INFER_RESPONSE_COMPLETE", *SEND]
    ns = [v for _, v in stamps]
    assert ns == sorted(ns)


def test_a_failed_unary_request_keeps_its_read_and_send_stamps(served: tuple[Any, Path]) -> None:
    client, path = served
    with pytest.raises(grpcclient.InferenceServerException) as err:
        client.infer("identity", [_input(X)], outputs=[grpcclient.InferRequestedOutput("NOPE")], request_id="bad")
    assert "NOPE" in err.value.message()
    stamps = [n for n, _ in _wait_trace(path, "bad")]
    # the error status is what is sent: no INFER_RESPONSE_COMPLETE, still GRPC_SEND_*
    assert stamps[:3] == [*READ, "REQUEST_START"] and stamps[-2:] == SEND
    assert "INFER_RESPONSE_COMPLETE" not in stamps


def test_a_call_past_its_deadline_is_traced_exactly_once(served: tuple[Any, Path], repo: Path) -> None:
    client, path = served
    with pytest.raises(grpcclient.InferenceServerException) as err:
        client.infer("slow", [_input(X)], request_id="late", client_timeout=0.1)
    assert err.value.status() == "StatusCode.DEADLINE_EXCEEDED"
    stamps = [n for n, _ in _wait_trace(path, "late")]
    assert stamps[:3] == [*READ, "REQUEST_START"] and "REQUEST_END" in stamps
    client.infer("identity", [_input(X)], request_id="after")
    _wait_trace(path, "after")
    rids = [e.get("request_id") for e in json.loads(path.read_text()) if "model_name" in e]
    assert rids.count("late") == 1


def test_stream_requests_have_read_and_one_send_pair_per_response(served: tuple[Any, Path]) -> None:
    client, path = served
    got: queue.Queue[Any] = queue.Queue()
    client.start_stream(lambda result, error: got.put(error or result))
    client.async_stream_infer("identity", [_input(X)], request_id="s1")
    client.async_stream_infer("repeat", [_input(np.full(4, 3, np.float32))], request_id="d1")
    results = [got.get(timeout=30) for _ in range(4)]
    client.stop_stream()
    assert sorted(r.get_response().id for r in results) == ["d1", "d1", "d1", "s1"]
    plain = _wait_trace(path, "s1")
    assert [n for n, _ in plain] == [*READ, *NAMES, *SEND]
    assert [v for _, v in plain] == sorted(v for _, v in plain)
    decoupled = [n for n, _ in sorted(_wait_trace(path, "d1"), key=lambda p: p[1])]
    assert decoupled[:2] == READ
    assert decoupled.count("GRPC_SEND_START") == decoupled.count("GRPC_SEND_END") == 3
    assert "INFER_RESPONSE_COMPLETE" not in decoupled


def test_opentelemetry_root_span_events_match_tritons(repo: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from otlp_collector import OtlpCollector as _Collector

    collector = _Collector()
    try:
        config = ["mode=opentelemetry", "level=TIMESTAMPS", "rate=1", f"opentelemetry,url={collector.url}"]
        engine = InferenceEngine(repo, trace_config=config)
        try:
            with GrpcServer(engine, "127.0.0.1", 0) as server:
                client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.port}")
                client.infer("identity", [_input(X)], request_id="o1")
                client.close()
        finally:
            engine.close()
        spans = [s for _, s in collector.spans()]
    finally:
        collector.stop()
    root = next(s for s in spans if s.name == "InferRequest")
    # qa/L0_trace/opentelemetry_unittest.py: root_events_grpc
    assert [e.name for e in root.events] == [*READ, "INFER_RESPONSE_COMPLETE", *SEND]


def _wait_trace(path: Path, request_id: str) -> list[tuple[str, int]]:
    """The trace is written once its call has ended (after GRPC_SEND_END), a moment after the client has its answer."""
    deadline = time.monotonic() + 20
    while True:
        if path.exists():
            traces = _traces(path)
            if request_id in traces:
                return traces[request_id]
        assert time.monotonic() < deadline, f"no trace of {request_id!r} in {path}"
        time.sleep(0.01)
