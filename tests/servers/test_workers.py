"""``tritonlite serve --workers 2`` with the real tritonclient: requests reach both worker processes,
a sequence stays on one worker, statistics and metrics sum over workers, model control, client shared
memory and log/trace settings reach every worker, and SIGTERM leaves no process behind. One server for the whole module (start-up is the cost)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from model_repos import write_model
from tritonlite.workers import merge_metrics, merge_statistics, owner_of

tritonclient_http = pytest.importorskip("tritonclient.http")
tritonclient_grpc = pytest.importorskip("tritonclient.grpc")

ROOT = Path(__file__).resolve().parents[2]

WHOAMI_PY = """
import os
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("PID", np.array([os.getpid()], dtype=np.int64))])
                for r in requests]
"""

WHOAMI_CONFIG = """
    name: "whoami"
    backend: "python"
    max_batch_size: 0
    input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 1 ] } ]
    output [ { name: "PID" data_type: TYPE_INT64 dims: [ 1 ] } ]
"""

# a running sum per sequence, kept in the worker's memory: only correct if the sequence stays on one worker
ACCUMULATE_PY = """
import os
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.totals = {}

    def execute(self, requests):
        out = []
        for r in requests:
            cid = r.correlation_id()
            x = int(pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy().reshape(-1)[0])
            self.totals[cid] = self.totals.get(cid, 0) + x
            out.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("SUM", np.array([self.totals[cid]], dtype=np.int64)),
                pb_utils.Tensor("PID", np.array([os.getpid()], dtype=np.int64))]))
        return out
"""

ACCUMULATE_CONFIG = """
    name: "accumulate"
    backend: "python"
    max_batch_size: 0
    sequence_batching { max_sequence_idle_microseconds: 60000000 }
    input [ { name: "INPUT0" data_type: TYPE_INT64 dims: [ 1 ] } ]
    output [ { name: "SUM" data_type: TYPE_INT64 dims: [ 1 ] }, { name: "PID" data_type: TYPE_INT64 dims: [ 1 ] } ]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    repo = tmp_path_factory.mktemp("workers_repo")
    write_model(repo, "whoami", WHOAMI_CONFIG, {"1/model.py": WHOAMI_PY})
    write_model(repo, "accumulate", ACCUMULATE_CONFIG, {"1/model.py": ACCUMULATE_PY})
    http, grpc, metrics = _free_port(), _free_port(), _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "tritonlite", "serve", "--model-repository", str(repo), "--workers", "2",
           "--model-control-mode", "explicit", "--load-model", "*", "--http-port", str(http),
           "--grpc-port", str(grpc), "--metrics-port", str(metrics), "--allow-cpu-metrics", "false",
           "--allow-gpu-metrics", "false", "--exit-timeout-secs", "2", "--allow-client-shm", "true"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 40
        ready = False
        while time.monotonic() < deadline and proc.poll() is None and not ready:
            workers = _children_of(proc.pid)
            # ready when both workers answer: each one's own HTTP door and its gRPC door
            if len(workers) == 2:
                try:
                    pids = _pids_over_new_connections(http, 12)
                    ready = len(pids) == 2 and tritonclient_grpc.InferenceServerClient(f"127.0.0.1:{grpc}").is_server_ready()
                except Exception:
                    pass
            time.sleep(0.2)
        assert ready, f"2 workers did not become ready (exit status {proc.poll()})"
        yield {"proc": proc, "http": f"127.0.0.1:{http}", "grpc": f"127.0.0.1:{grpc}", "metrics": metrics,
               "http_port": http}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                for child in _children_of(proc.pid):
                    os.kill(child, signal.SIGKILL)
                proc.kill()
                proc.wait()


def _whoami_http(url: str) -> int:
    client = tritonclient_http.InferenceServerClient(url)  # a new client: a new connection
    try:
        x = tritonclient_http.InferInput("INPUT0", [1], "FP32")
        x.set_data_from_numpy(np.zeros(1, np.float32))
        return int(client.infer("whoami", [x]).as_numpy("PID")[0])
    finally:
        client.close()


def _pids_over_new_connections(port: int, count: int) -> set[int]:
    return {_whoami_http(f"127.0.0.1:{port}") for _ in range(count)}


def _stats_count(client, model: str) -> int:  # type: ignore[no-untyped-def]
    stats = client.get_inference_statistics(model)
    return int(stats["model_stats"][0]["inference_count"])


def test_requests_land_on_both_workers(served) -> None:  # type: ignore[no-untyped-def]
    workers = set(_children_of(served["proc"].pid))
    assert _pids_over_new_connections(served["http_port"], 24) == workers
    pids = set()
    for _ in range(24):
        client = tritonclient_grpc.InferenceServerClient(served["grpc"])
        x = tritonclient_grpc.InferInput("INPUT0", [1], "FP32")
        x.set_data_from_numpy(np.zeros(1, np.float32))
        pids.add(int(client.infer("whoami", [x]).as_numpy("PID")[0]))
        client.close()
    assert pids == workers


def test_sequences_stay_on_their_owner_worker(served) -> None:  # type: ignore[no-untyped-def]
    seen_pids: set[int] = set()
    for cid in (101, 102, 103, 104):
        sums, pids = [], set()
        for step, value in enumerate((1, 2, 3, 4)):
            use_grpc = (cid + step) % 2 == 0  # each request on a new connection, alternating the doors
            mod = tritonclient_grpc if use_grpc else tritonclient_http
            client = mod.InferenceServerClient(served["grpc"] if use_grpc else served["http"])
            x = mod.InferInput("INPUT0", [1], "INT64")
            x.set_data_from_numpy(np.array([value], np.int64))
            result = client.infer("accumulate", [x], sequence_id=cid, sequence_start=step == 0, sequence_end=step == 3)
            sums.append(int(result.as_numpy("SUM")[0]))
            pids.add(int(result.as_numpy("PID")[0]))
            client.close()
        assert sums == [1, 3, 6, 10]
        assert len(pids) == 1
        seen_pids |= pids
    assert seen_pids == set(_children_of(served["proc"].pid))  # ids 101..104 are owned by both workers


def test_statistics_and_metrics_sum_over_workers(served) -> None:  # type: ignore[no-untyped-def]
    client = tritonclient_http.InferenceServerClient(served["http"])
    before = _stats_count(client, "whoami")
    pids = [_whoami_http(served["http"]) for _ in range(16)]
    assert len(set(pids)) == 2
    for _ in range(6):  # whichever worker answers, the statistics cover both
        fresh = tritonclient_http.InferenceServerClient(served["http"])
        assert _stats_count(fresh, "whoami") == before + 16
        fresh.close()
    grpc_client = tritonclient_grpc.InferenceServerClient(served["grpc"])
    stats = grpc_client.get_inference_statistics("whoami", as_json=True)
    assert int(stats["model_stats"][0]["inference_count"]) == before + 16
    grpc_client.close()
    text = urllib.request.urlopen(f"http://127.0.0.1:{served['metrics']}/metrics", timeout=10).read().decode()
    line = next(x for x in text.splitlines() if x.startswith('nv_inference_request_success{model="whoami",version="1"}'))
    assert int(float(line.rsplit(" ", 1)[1])) == before + 16
    client.close()


def test_model_control_reaches_every_worker(served) -> None:  # type: ignore[no-untyped-def]
    client = tritonclient_http.InferenceServerClient(served["http"])
    client.unload_model("whoami")
    for _ in range(10):
        fresh = tritonclient_http.InferenceServerClient(served["http"])
        assert fresh.is_model_ready("whoami") is False
        fresh.close()
    client.load_model("whoami")
    assert _pids_over_new_connections(served["http_port"], 16) == set(_children_of(served["proc"].pid))
    client.close()


def test_shared_memory_registered_once_serves_every_worker(served) -> None:  # type: ignore[no-untyped-def]
    shm = pytest.importorskip("tritonclient.utils.shared_memory")
    tag = f"tl_workers_{os.getpid()}"
    inp = shm.create_shared_memory_region(f"{tag}_in", f"/{tag}_in", 4)
    out = shm.create_shared_memory_region(f"{tag}_out", f"/{tag}_out", 8)
    try:
        shm.set_shared_memory_region(inp, [np.array([2.5], np.float32)])
        client = tritonclient_http.InferenceServerClient(served["http"])
        client.register_system_shared_memory("in", f"/{tag}_in", 4)
        client.register_system_shared_memory("out", f"/{tag}_out", 8)
        client.close()
        pids = set()
        for _ in range(16):  # new connections: both workers read the input from and write the output to the regions
            fresh = tritonclient_http.InferenceServerClient(served["http"])
            assert sorted(r["name"] for r in fresh.get_system_shared_memory_status()) == ["in", "out"]
            x = tritonclient_http.InferInput("INPUT0", [1], "FP32")
            x.set_shared_memory("in", 4)
            want = tritonclient_http.InferRequestedOutput("PID", binary_data=True)
            want.set_shared_memory("out", 8)
            result = fresh.infer("whoami", [x], outputs=[want])
            described = result.get_output("PID")
            assert described["shape"] == [1] and described["datatype"] == "INT64" and "data" not in described
            pids.add(int(shm.get_contents_as_numpy(out, np.int64, [1])[0]))
            fresh.close()
        assert pids == set(_children_of(served["proc"].pid))
        grpc_client = tritonclient_grpc.InferenceServerClient(served["grpc"])
        grpc_client.unregister_system_shared_memory("in")
        grpc_client.unregister_system_shared_memory("out")
        grpc_client.close()
        for _ in range(8):
            fresh = tritonclient_http.InferenceServerClient(served["http"])
            assert fresh.get_system_shared_memory_status() == []
            x = tritonclient_http.InferInput("INPUT0", [1], "FP32")
            x.set_shared_memory("in", 4)
            with pytest.raises(tritonclient_http.InferenceServerException, match="Unable to find shared memory region: 'in'"):
                fresh.infer("whoami", [x])
            fresh.close()
    finally:
        cleanup = tritonclient_http.InferenceServerClient(served["http"])
        cleanup.unregister_system_shared_memory()
        cleanup.close()
        shm.destroy_shared_memory_region(inp)
        shm.destroy_shared_memory_region(out)


def test_a_failed_registration_holds_nowhere(served) -> None:  # type: ignore[no-untyped-def]
    client = tritonclient_grpc.InferenceServerClient(served["grpc"])
    with pytest.raises(tritonclient_grpc.InferenceServerException, match="Unable to open shared memory region: '/tl_no_such_region'"):
        client.register_system_shared_memory("ghost", "/tl_no_such_region", 4)
    client.close()
    for _ in range(8):
        fresh = tritonclient_http.InferenceServerClient(served["http"])
        assert fresh.get_system_shared_memory_status() == []
        fresh.close()


def test_a_registration_a_peer_refuses_is_undone_here() -> None:
    from tritonlite.errors import AlreadyExistsError
    from tritonlite.protocol.shm import SharedMemoryRegistry

    shm = pytest.importorskip("tritonclient.utils.shared_memory")
    key = f"/tl_workers_undo_{os.getpid()}"
    handle = shm.create_shared_memory_region("undo", key, 4)
    calls: list[tuple] = []

    def fan_out(*change: object) -> None:
        calls.append(change)
        if change[0] == "register_system":
            raise AlreadyExistsError("shared memory region 'r' already in manager")

    registry = SharedMemoryRegistry()
    registry.fan_out = fan_out
    try:
        with pytest.raises(AlreadyExistsError, match="shared memory region 'r' already in manager"):
            registry.register_system("r", key, 0, 4)
        assert registry.system_status() == []
        assert calls == [("register_system", "r", key, 0, 4), ("unregister_system", "r")]
        registry.fan_out = lambda *change: calls.append(change)  # the peers accept: the region holds here too
        registry.register_system("r", key, 0, 4)
        assert [r["name"] for r in registry.system_status()] == ["r"]
    finally:
        registry.close()
        shm.destroy_shared_memory_region(handle)


def test_log_and_trace_settings_hold_on_every_worker(served) -> None:  # type: ignore[no-untyped-def]
    client = tritonclient_http.InferenceServerClient(served["http"])
    try:
        assert client.update_log_settings({"log_verbose_level": 3})["log_verbose_level"] == 3
        assert client.update_trace_settings(settings={"trace_rate": "7"})["trace_rate"] == "7"
        for _ in range(12):
            fresh = tritonclient_http.InferenceServerClient(served["http"])
            assert fresh.get_log_settings()["log_verbose_level"] == 3
            assert fresh.get_trace_settings()["trace_rate"] == "7"
            fresh.close()
        grpc_client = tritonclient_grpc.InferenceServerClient(served["grpc"])
        assert grpc_client.get_log_settings(as_json=True)["settings"]["log_verbose_level"]["uint32_param"] == 3
        grpc_client.close()
    finally:
        client.update_log_settings({"log_verbose_level": 0})
        client.update_trace_settings(settings={"trace_rate": None})
        client.close()


def test_sigterm_leaves_no_process_behind(served) -> None:  # type: ignore[no-untyped-def]
    proc = served["proc"]
    workers = _children_of(proc.pid)
    assert len(workers) == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in workers if _alive(p)] == []


def test_port_zero_with_workers_is_refused(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "tritonlite", "serve", "--model-repository", str(tmp_path), "--workers", "2",
                          "--http-port", "0"], capture_output=True, text=True, env=env, timeout=30, cwd=ROOT)
    assert out.returncode == 1
    assert out.stderr.strip().endswith("error: --http-port 0 cannot be shared by 2 workers: give a port number")


def test_owner_of_is_stable_per_id() -> None:
    assert [owner_of(i, 2) for i in (1, 2, 3, 4)] == [1, 0, 1, 0]
    assert owner_of("abc", 3) == owner_of("abc", 3)


def test_merge_metrics_sums_samples_and_keeps_comments() -> None:
    a = '# HELP nv_x help\n# TYPE nv_x counter\nnv_x{model="m",version="1"} 3\nnv_q{quantile="0.5"} 7\n'
    b = '# HELP nv_x help\n# TYPE nv_x counter\nnv_x{model="m",version="1"} 4\nnv_q{quantile="0.5"} 2\nnv_y 1.5\n'
    assert merge_metrics([a, b]) == ('# HELP nv_x help\n# TYPE nv_x counter\nnv_x{model="m",version="1"} 7\n'
                                     'nv_q{quantile="0.5"} 7\nnv_y 1.5\n')


def test_merge_statistics_sums_counts_and_batches() -> None:
    def stat(count: int, last: int, batch: int) -> dict:
        return {"name": "m", "version": "1", "last_inference": last, "inference_count": count, "execution_count": count,
                "inference_stats": {"success": {"count": count, "ns": 10 * count}},
                "batch_stats": [{"batch_size": batch, "compute_infer": {"count": count, "ns": count}}]}

    merged = merge_statistics([{"model_stats": [stat(2, 50, 1)]}, {"model_stats": [stat(3, 40, 1)]},
                               {"model_stats": [stat(1, 60, 4)]}])
    assert merged == {"model_stats": [{
        "name": "m", "version": "1", "last_inference": 60, "inference_count": 6, "execution_count": 6,
        "inference_stats": {"success": {"count": 6, "ns": 60}},
        "batch_stats": [{"batch_size": 1, "compute_infer": {"count": 5, "ns": 5}},
                        {"batch_size": 4, "compute_infer": {"count": 1, "ns": 1}}]}]}
