"""Faults: models that raise, fail to initialize, answer the wrong number of times or hang; unload and
reload under load over both doors; SIGTERM under load; gRPC clients cancelling in flight. In every
case the failing request gets a precise error and everything else keeps serving."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from model_repos import IDENTITY_PY, identity_py_config, write_model
from served import ServedProcess, wait_until
from tritonlite import InferenceEngine

RAISES_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        raise RuntimeError("model exploded")
"""
INIT_RAISES_PY = """
class TritonPythonModel:
    def initialize(self, args):
        raise RuntimeError("cannot open the weights")

    def execute(self, requests):
        return []
"""
WRONG_COUNT_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        x = pb_utils.get_input_tensor_by_name(requests[0], "INPUT0").as_numpy()
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)])] * (len(requests) + 1)
"""
#: hangs until cancelled (bounded at 20 s), then writes what it saw next to the model
HANG_PY = """
import os, time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            deadline = time.monotonic() + 20
            while not r.is_cancelled() and time.monotonic() < deadline:
                time.sleep(0.005)
            marker = os.path.join(pb_utils.get_model_dir(), f"seen_{int(x.reshape(-1)[0])}")
            with open(marker + ".tmp", "w") as fh:  # renamed into place: the test never reads it half-written
                fh.write("cancelled" if r.is_cancelled() else "not cancelled")
            os.replace(marker + ".tmp", marker)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
        return out
"""
SLOWISH_PY = """
import time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        time.sleep(0.02)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
                for r in requests]
"""
SLEEP_PY = SLOWISH_PY.replace("0.02", "0.3")


def _cfg(name: str, extra: str = "") -> str:
    return identity_py_config(name, dims="[ 1 ]", dtype="TYPE_INT32", extra=extra)


@pytest.fixture(scope="module")
def fault_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faults") / "models"
    write_model(root, "raises", _cfg("raises"), {"1/model.py": RAISES_PY})
    write_model(root, "init_raises", _cfg("init_raises"), {"1/model.py": INIT_RAISES_PY})
    write_model(root, "wrong_count", _cfg("wrong_count"), {"1/model.py": WRONG_COUNT_PY})
    write_model(root, "hang", _cfg("hang", "instance_group [ { kind: KIND_CPU count: 4 } ]"), {"1/model.py": HANG_PY})
    write_model(root, "hang_queue", identity_py_config("hang_queue", dims="[ 1 ]", dtype="TYPE_INT32", max_batch=1,
                                                       extra="instance_group [ { kind: KIND_CPU count: 1 } ] "
                                                             "dynamic_batching { default_queue_policy { default_timeout_microseconds: 30000000 allow_timeout_override: true } }"),
                {"1/model.py": HANG_PY})
    write_model(root, "steady", _cfg("steady", "instance_group [ { kind: KIND_CPU count: 2 } ]"), {"1/model.py": SLOWISH_PY})
    write_model(root, "identity", _cfg("identity"), {"1/model.py": IDENTITY_PY})
    write_model(root, "sleepy", _cfg("sleepy", "instance_group [ { kind: KIND_CPU count: 4 } ]"), {"1/model.py": SLEEP_PY})
    return root


@pytest.fixture(scope="module")
def doors(fault_repo: Path) -> Iterator[tuple[InferenceEngine, str, str]]:
    from tritonlite.grpc import GrpcServer
    from tritonlite.http import HttpServer

    with InferenceEngine(fault_repo, model_control_mode="explicit", startup_models=["*"]) as engine, \
            HttpServer(engine) as http, GrpcServer(engine) as grpc:
        yield engine, f"127.0.0.1:{http.port}", f"127.0.0.1:{grpc.port}"


def _post(url: str, model: str, value: int = 1, params: dict[str, Any] | None = None, shape: list[int] | None = None,
          timeout: float = 30) -> tuple[int, Any]:
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        doc: dict[str, Any] = {"inputs": [{"name": "INPUT0", "shape": shape or [1], "datatype": "INT32", "data": [value]}]}
        if params:
            doc["parameters"] = params
        conn.request("POST", f"/v2/models/{model}/infer", body=json.dumps(doc))
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def _grpc_call(url: str, model: str, value: int = 1, timeout: float = 30) -> Any:
    import grpc

    from tritonlite.protos import grpc_service_pb2 as pb

    msg = pb.ModelInferRequest(model_name=model)
    msg.inputs.add(name="INPUT0", datatype="INT32", shape=[1])
    msg.raw_input_contents.append(np.array([value], dtype=np.int32).tobytes())
    channel = grpc.insecure_channel(url)
    call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", request_serializer=pb.ModelInferRequest.SerializeToString,
                               response_deserializer=pb.ModelInferResponse.FromString)
    return channel, call.future(msg, timeout=timeout)


def _grpc_infer(url: str, model: str, value: int = 1) -> tuple[str, str]:
    import grpc

    channel, fut = _grpc_call(url, model, value)
    try:
        fut.result()
        return "OK", ""
    except grpc.RpcError as exc:
        return exc.code().name, exc.details()
    finally:
        channel.close()


def test_execute_raising_fails_only_that_request(doors: tuple[InferenceEngine, str, str]) -> None:
    _, http_url, grpc_url = doors
    status, doc = _post(http_url, "raises")
    text = "Failed to process the request(s) for model 'raises_0', message: RuntimeError: model exploded"  # Triton's wording
    assert (status, doc) == (500, {"error": text})
    assert _grpc_infer(grpc_url, "raises") == ("INTERNAL", text)
    assert _post(http_url, "identity", 5) == (200, {"model_name": "identity", "model_version": "1",
                                                    "outputs": [{"name": "OUTPUT0", "datatype": "INT32", "shape": [1], "data": [5]}]})


def test_initialize_raising_leaves_the_model_unavailable(doors: tuple[InferenceEngine, str, str]) -> None:
    engine, http_url, grpc_url = doors
    index = {m["name"]: m for m in engine.repository_index()}
    assert index["init_raises"]["state"] == "UNAVAILABLE"
    assert "cannot open the weights" in index["init_raises"]["reason"]
    status, doc = _post(http_url, "init_raises")
    assert status in (400, 404) and "init_raises" in doc["error"]
    assert _grpc_infer(grpc_url, "init_raises")[0] in ("NOT_FOUND", "UNAVAILABLE", "INVALID_ARGUMENT")
    assert engine.is_model_ready("identity")


def test_wrong_number_of_responses_is_an_error(doors: tuple[InferenceEngine, str, str]) -> None:
    _, http_url, grpc_url = doors
    status, doc = _post(http_url, "wrong_count")
    assert status == 500
    assert "wrong_count" in doc["error"] or "response" in doc["error"].lower(), doc
    code, detail = _grpc_infer(grpc_url, "wrong_count")
    assert code == "INTERNAL" and detail == doc["error"]
    assert _post(http_url, "identity", 2)[0] == 200


def test_request_timeout_reaches_a_queued_request(doors: tuple[InferenceEngine, str, str], fault_repo: Path) -> None:
    """The one instance hangs on request 100 (until it is cancelled); request 101 waits in the queue and
    its 50 ms timeout (an allowed override of the 30 s default) rejects it with Triton's text."""
    _, http_url, _ = doors
    def hung_client() -> None:
        with pytest.raises(TimeoutError):  # this client gives up: its disconnect cancels the hung request
            _post(http_url, "hang_queue", 100, shape=[1, 1], timeout=2)

    t = threading.Thread(target=hung_client)
    t.start()
    try:
        time.sleep(0.3)
        status, doc = _post(http_url, "hang_queue", 101, params={"timeout": 50_000}, shape=[1, 1])
        assert (status, doc) == (503, {"error": "Request timeout expired"})
    finally:
        t.join(30)  # the client gives up at 2 s: its disconnect cancels the hung request
    assert wait_until(lambda: (fault_repo / "hang_queue" / "seen_100").exists(), 20)
    assert (fault_repo / "hang_queue" / "seen_100").read_text() == "cancelled"


def test_grpc_cancel_in_flight_reaches_the_model(doors: tuple[InferenceEngine, str, str], fault_repo: Path) -> None:
    import grpc

    _, _, grpc_url = doors
    channel, fut = _grpc_call(grpc_url, "hang", 200)
    try:
        time.sleep(0.3)
        assert fut.cancel()
        with pytest.raises(grpc.FutureCancelledError):
            fut.result()
    finally:
        channel.close()
    assert wait_until(lambda: (fault_repo / "hang" / "seen_200").exists(), 10)
    assert (fault_repo / "hang" / "seen_200").read_text() == "cancelled"
    # a gRPC deadline cancels the same way
    code, _ = _grpc_infer_deadline(grpc_url, "hang", 201)
    assert code == "DEADLINE_EXCEEDED"
    assert wait_until(lambda: (fault_repo / "hang" / "seen_201").exists(), 10)
    assert (fault_repo / "hang" / "seen_201").read_text() == "cancelled"


def _grpc_infer_deadline(url: str, model: str, value: int) -> tuple[str, str]:
    import grpc

    channel, fut = _grpc_call(url, model, value, timeout=0.3)
    try:
        fut.result()
        return "OK", ""
    except grpc.RpcError as exc:
        return exc.code().name, exc.details()
    finally:
        channel.close()


def test_unload_and_reload_under_load_over_both_doors(doors: tuple[InferenceEngine, str, str]) -> None:
    """Clients hammer `steady` over HTTP and gRPC while it is unloaded and reloaded twice: every call
    gets exactly one answer, a success with its own value or a clean not-available error."""
    _, http_url, grpc_url = doors
    results: list[tuple[str, int, Any]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def http_client(base: int) -> None:
        i = 0
        while not stop.is_set() and i < 200:
            status, doc = _post(http_url, "steady", base + i)
            with lock:
                results.append(("http", base + i, (status, doc)))
            i += 1

    def grpc_client(base: int) -> None:
        i = 0
        while not stop.is_set() and i < 200:
            with lock:
                results.append(("grpc", base + i, _grpc_infer(grpc_url, "steady", base + i)))
            i += 1

    clients = [threading.Thread(target=http_client, args=(1000 * k,)) for k in range(2)]
    clients += [threading.Thread(target=grpc_client, args=(1000 * k + 10_000,)) for k in range(2)]
    for c in clients:
        c.start()
    try:
        for _ in range(2):
            time.sleep(0.15)
            assert _repo_action(http_url, "steady", "unload") == 200
            time.sleep(0.15)
            assert _repo_action(http_url, "steady", "load") == 200
        time.sleep(0.15)
    finally:
        stop.set()
        for c in clients:
            c.join(30)
    assert len({(door, v) for door, v, _ in results}) == len(results)  # no request answered twice
    ok = errors = 0
    for door, value, answer in results:
        if door == "http":
            status, doc = answer
            if status == 200:
                ok += 1
                assert doc["outputs"][0]["data"] == [value]
            else:
                errors += 1
                assert status in (400, 404, 503) and "steady" in doc["error"], doc
        else:
            code, detail = answer
            if code == "OK":
                ok += 1
            else:
                errors += 1
                assert code in ("UNAVAILABLE", "NOT_FOUND") and "steady" in detail, (code, detail)
    assert ok > 0
    assert _post(http_url, "steady", 7)[0] == 200  # loaded again at the end


def _repo_action(url: str, model: str, action: str) -> int:
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", f"/v2/repository/models/{model}/{action}", body=b"")
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_sigterm_under_load_drains_then_exits_zero(fault_repo: Path) -> None:
    """`tritonlite serve` as a child process: SIGTERM while 4 requests run (300 ms each) lets them finish,
    refuses new connections, and exits 0 well within --exit-timeout-secs."""
    with ServedProcess(fault_repo, ["--model-control-mode", "explicit", "--load-model", "sleepy", "--exit-timeout-secs", "10",
                                    "--allow-grpc", "false"]) as proc:
        answers: list[tuple[int, Any]] = []
        threads = [threading.Thread(target=lambda v=v: answers.append(_post(proc.http, "sleepy", v))) for v in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.1)  # the 4 requests are running
        t0 = time.monotonic()
        code = proc.terminate(timeout=15)
        elapsed = time.monotonic() - t0
        for t in threads:
            t.join(10)
        assert code == 0, proc.errors[-20:]
        assert sorted(answers, key=lambda a: a[1]["outputs"][0]["data"]) == [
            (200, {"model_name": "sleepy", "model_version": "1",
                   "outputs": [{"name": "OUTPUT0", "datatype": "INT32", "shape": [1], "data": [v]}]}) for v in range(4)]
        assert elapsed < 10
        assert any("Signal (15) received" in line for line in proc.output), proc.output
        assert "Shutdown complete" in proc.output[-1] or any("Shutdown complete" in line for line in proc.output[-3:])


def test_sigterm_exit_is_bounded_by_exit_timeout_secs(fault_repo: Path) -> None:
    """A request that never finishes cannot hold shutdown past --exit-timeout-secs."""
    with ServedProcess(fault_repo, ["--model-control-mode", "explicit", "--load-model", "hang", "--exit-timeout-secs", "1",
                                    "--allow-grpc", "false"]) as proc:
        t = threading.Thread(target=lambda: _safe_post(proc.http, "hang", 300))
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        code = proc.terminate(timeout=20)
        elapsed = time.monotonic() - t0
        t.join(25)
        assert code == 0, proc.errors[-20:]
        assert elapsed < 15, elapsed  # 1 s drain + teardown, never the model's 20 s


def _safe_post(url: str, model: str, value: int) -> None:
    try:
        _post(url, model, value, timeout=25)
    except (ConnectionError, http.client.HTTPException, OSError):
        pass  # the server closed the connection at the drain deadline

