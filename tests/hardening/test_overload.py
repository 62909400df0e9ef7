"""Overload: a slow model (one instance, 50 ms a request) offered 10x what it can serve, over both doors.

Every request is answered exactly once: a success carrying its own id and data, or UNAVAILABLE / 503
with Triton's text when ``max_queue_size`` is set; none lost or duplicated. Health and readiness keep
answering while the model is saturated, and memory stays bounded across rounds.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from model_repos import identity_py_config, write_model
from tritonlite import InferenceEngine

SLOW_PY = """
import time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            time.sleep(0.05)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())]))
        return out
"""
OFFERED = 40  # in ~0.2 s: the model serves 4 in that time (10x capacity)
QUEUE_FULL = "Exceeds maximum queue size"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from tritonlite.grpc import GrpcServer
    from tritonlite.http import HttpServer

    root = tmp_path_factory.mktemp("overload") / "models"
    one = "instance_group [ { kind: KIND_CPU count: 1 } ]"
    write_model(root, "slow_unbounded", identity_py_config("slow_unbounded", dims="[ 1 ]", dtype="TYPE_INT32", max_batch=1,
                                                           extra=one + " dynamic_batching { }"), {"1/model.py": SLOW_PY})
    write_model(root, "slow_bounded", identity_py_config("slow_bounded", dims="[ 1 ]", dtype="TYPE_INT32", max_batch=1,
                                                         extra=one + " dynamic_batching { default_queue_policy { max_queue_size: 4 } }"),
                {"1/model.py": SLOW_PY})
    with InferenceEngine(root) as engine, HttpServer(engine, "127.0.0.1", 0) as http, GrpcServer(engine, "127.0.0.1", 0) as grpc:
        yield f"127.0.0.1:{http.port}", f"127.0.0.1:{grpc.port}"


def _http_infer(url: str, model: str, tag: int) -> tuple[int, Any]:
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        body = json.dumps({"id": f"r{tag}", "inputs": [{"name": "INPUT0", "shape": [1, 1], "datatype": "INT32", "data": [tag]}]})
        conn.request("POST", f"/v2/models/{model}/infer", body=body)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _grpc_infer(url: str, model: str, tag: int) -> tuple[int, Any]:
    import grpc

    from tritonlite.protos import grpc_service_pb2 as pb

    msg = pb.ModelInferRequest(model_name=model, id=f"r{tag}")
    t = msg.inputs.add(name="INPUT0", datatype="INT32", shape=[1, 1])
    msg.raw_input_contents.append(np.array([tag], dtype=np.int32).tobytes())
    with grpc.insecure_channel(url) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", request_serializer=pb.ModelInferRequest.SerializeToString,
                                   response_deserializer=pb.ModelInferResponse.FromString)
        try:
            resp = call(msg, timeout=30)
        except grpc.RpcError as exc:
            return (503 if exc.code() == grpc.StatusCode.UNAVAILABLE else -1), {"error": exc.details(), "code": exc.code().name}
    del t
    value = int(np.frombuffer(resp.raw_output_contents[0], dtype=np.int32)[0])
    return 200, {"id": resp.id, "outputs": [{"data": [value]}]}


def _health_latencies(url: str, stop: threading.Event, out: list[tuple[int, float]]) -> None:
    host, port = url.split(":")
    while not stop.is_set():
        for path in ("/v2/health/live", "/v2/health/ready"):
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            t0 = time.perf_counter()
            conn.request("GET", path)
            status = conn.getresponse().status
            out.append((status, time.perf_counter() - t0))
            conn.close()
        time.sleep(0.01)


def _rss() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


def _offer(door: str, servers: tuple[str, str], model: str) -> tuple[dict[int, tuple[int, Any]], list[tuple[int, float]]]:
    http_url, grpc_url = servers
    infer = _http_infer if door == "http" else _grpc_infer
    url = http_url if door == "http" else grpc_url
    answers: dict[int, list[tuple[int, Any]]] = {i: [] for i in range(OFFERED)}
    lock = threading.Lock()

    def one(tag: int) -> None:
        result = infer(url, model, tag)
        with lock:
            answers[tag].append(result)

    health: list[tuple[int, float]] = []
    stop = threading.Event()
    prober = threading.Thread(target=_health_latencies, args=(http_url, stop, health))
    prober.start()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(OFFERED)]
    for i, t in enumerate(threads):
        t.start()
        if i % 8 == 7:
            time.sleep(0.04)
    for t in threads:
        t.join(60)
    stop.set()
    prober.join(10)
    assert all(len(a) == 1 for a in answers.values()), {k: len(v) for k, v in answers.items() if len(v) != 1}  # none lost or doubled
    return {k: v[0] for k, v in answers.items()}, health


@pytest.mark.parametrize("door", ["http", "grpc"])
def test_overload_without_queue_limit_serves_everything(servers: tuple[str, str], door: str) -> None:
    answers, health = _offer(door, servers, "slow_unbounded")
    for tag, (status, doc) in answers.items():
        assert status == 200, doc
        assert doc["id"] == f"r{tag}" and doc["outputs"][0]["data"] == [tag]  # its own answer, not another's
    assert health and all(status == 200 for status, _ in health)
    print(f"\n{door} unbounded: health max {max(s for _, s in health) * 1000:.1f} ms over {len(health)} probes")


@pytest.mark.parametrize("door", ["http", "grpc"])
def test_overload_with_queue_limit_rejects_with_tritons_text(servers: tuple[str, str], door: str) -> None:
    rss_before = _rss()
    for _round in range(2):
        answers, health = _offer(door, servers, "slow_bounded")
        ok = [t for t, (s, _) in answers.items() if s == 200]
        rejected = [t for t, (s, _) in answers.items() if s == 503]
        assert len(ok) + len(rejected) == OFFERED, answers
        assert len(rejected) > OFFERED // 2  # most of a 10x offer cannot fit a queue of 4
        assert len(ok) >= 5  # the queue (4) plus the one executing, at least
        for tag in ok:
            assert answers[tag][1]["id"] == f"r{tag}" and answers[tag][1]["outputs"][0]["data"] == [tag]
        for tag in rejected:
            assert answers[tag][1]["error"] == QUEUE_FULL
        assert health and all(status == 200 for status, _ in health)
    assert _rss() - rss_before < 64 * 2**20  # bounded: rejected requests leave nothing behind
    print(f"\n{door} bounded: {len(ok)} served, {len(rejected)} rejected; health max {max(s for _, s in health) * 1000:.1f} ms")


def test_grpc_max_message_size_is_enforced_before_decoding(tmp_path: Path) -> None:
    """A message over ``max_message_bytes`` is refused by the transport (RESOURCE_EXHAUSTED); the next fits."""
    import grpc

    from tritonlite.grpc import GrpcServer
    from tritonlite.protos import grpc_service_pb2 as pb

    write_model(tmp_path / "m", "echo", identity_py_config("echo", dims="[ -1 ]", dtype="TYPE_INT32"), {"1/model.py": SLOW_PY})
    with InferenceEngine(tmp_path / "m") as engine, GrpcServer(engine, max_message_bytes=4096) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", request_serializer=pb.ModelInferRequest.SerializeToString,
                                       response_deserializer=pb.ModelInferResponse.FromString)

            def request(n: int) -> pb.ModelInferRequest:
                msg = pb.ModelInferRequest(model_name="echo")
                msg.inputs.add(name="INPUT0", datatype="INT32", shape=[n])
                msg.raw_input_contents.append(np.arange(n, dtype=np.int32).tobytes())
                return msg

            with pytest.raises(grpc.RpcError) as info:
                call(request(2048), timeout=10)  # 8 KiB of data
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            resp = call(request(16), timeout=10)
            assert np.frombuffer(resp.raw_output_contents[0], dtype=np.int32).tolist() == list(range(16))
