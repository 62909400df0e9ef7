"""tritonlite on a real local Ray cluster (Serve, two replicas): the KServe v2 HTTP protocol through
Serve's proxy with the official tritonclient, the Python handle API, sequence affinity, model control
on every replica, merged metrics, and a replica killed under load (Serve replaces it; calls never hang).

The cluster and the application are the tier's (tests/ray/conftest.py); every wait is bounded."""

from __future__ import annotations

import threading
import time
import urllib.request
from typing import Any

import numpy as np
import pytest

from ray_cluster import NEEDS_RAY, Cluster, add_sub_inputs, wait_for

ray = pytest.importorskip("ray", reason=NEEDS_RAY)
pytest.importorskip("ray.serve", reason=NEEDS_RAY)
httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")

import tritonlite.ray as tlray  # noqa: E402
from tritonlite.errors import UnavailableError  # noqa: E402

pytestmark = pytest.mark.ray


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_infer_through_serve_proxy(cluster: Cluster, binary: bool) -> None:
    client = cluster.client()
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("add_sub")
    meta = client.get_model_metadata("add_sub")
    assert meta["name"] == "add_sub" and meta["inputs"][0] == {"name": "INPUT0", "datatype": "FP32", "shape": [4]}
    a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    b = np.array([0.5, 0.5, 0.5, 0.5], dtype=np.float32)
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("OUTPUT0", "OUTPUT1")]
    result = client.infer("add_sub", add_sub_inputs(a, b, binary), outputs=outputs)
    for name, expected in (("OUTPUT0", a + b), ("OUTPUT1", a - b)):
        got = result.as_numpy(name)
        assert got.dtype == np.float32 and got.shape == (4,)
        np.testing.assert_array_equal(got, expected)


def test_errors_keep_triton_status_and_text(cluster: Cluster) -> None:
    client = cluster.client()
    a = np.zeros(4, dtype=np.float32)
    with pytest.raises(Exception) as info:
        client.infer("nope", add_sub_inputs(a, a, True))
    assert info.value.status() == "404"
    assert info.value.message() == "Request for unknown model: 'nope' is not found"
    with urllib.request.urlopen(f"http://{cluster.url}/v2/models/add_sub/config", timeout=30) as resp:
        assert resp.status == 200 and b'"name":"add_sub"' in resp.read()


def test_python_handle_api(cluster: Cluster) -> None:
    a = np.arange(4, dtype=np.float32)
    b = np.full(4, 2.0, dtype=np.float32)
    outputs = cluster.handle.infer.remote("add_sub", {"INPUT0": a, "INPUT1": b}).result(timeout_s=30)
    assert sorted(outputs) == ["OUTPUT0", "OUTPUT1"]
    np.testing.assert_array_equal(outputs["OUTPUT0"], a + b)
    np.testing.assert_array_equal(outputs["OUTPUT1"], a - b)
    assert outputs["OUTPUT1"].dtype == np.float32


def _seq_step(client: Any, cid: int, value: int, start: bool, end: bool) -> tuple[int, int]:
    x = httpclient.InferInput("INPUT", [1, 1], "INT32")
    x.set_data_from_numpy(np.array([[value]], dtype=np.int32))
    r = client.infer("accum", [x], sequence_id=cid, sequence_start=start, sequence_end=end)
    return int(r.as_numpy("OUTPUT")[0, 0]), int(r.as_numpy("PID")[0, 0])


def test_sequences_stick_to_one_replica_and_keep_state(cluster: Cluster) -> None:
    client = cluster.client()
    steps = [3, 1, 4, 1, 5]
    cids = list(range(101, 117))  # 16 sequences over 2 replicas: all on one would be a 2**-15 chance
    totals = dict.fromkeys(cids, 0)
    pids: dict[int, set[int]] = {c: set() for c in cids}
    for i, step in enumerate(steps):  # interleaved: every sequence advances one step per round
        for cid in cids:
            value = step + cid
            total, pid = _seq_step(client, cid, value, start=i == 0, end=i == len(steps) - 1)
            totals[cid] += value
            assert total == totals[cid], f"sequence {cid} lost its state at step {i}"
            pids[cid].add(pid)
    assert all(len(p) == 1 for p in pids.values()), pids
    assert len({next(iter(p)) for p in pids.values()}) == 2  # both replicas serve sequences
    # the Python handle API routes by the same correlation id
    first = cluster.handle.infer.remote("accum", {"INPUT": np.array([[7]], dtype=np.int32)}, sequence_id=101,
                                        sequence_start=True).result(timeout_s=30)
    second = cluster.handle.infer.remote("accum", {"INPUT": np.array([[5]], dtype=np.int32)}, sequence_id=101,
                                         sequence_end=True).result(timeout_s=30)
    assert int(second["OUTPUT"][0, 0]) == 12
    assert int(first["PID"][0, 0]) == int(second["PID"][0, 0]) == next(iter(pids[101]))


def test_model_control_reaches_every_replica(cluster: Cluster) -> None:
    client = cluster.client()
    client.unload_model("add_sub")
    try:
        ready = cluster.handle.model_ready.remote("add_sub").result(timeout_s=60)
        assert len(ready) == 2 and not any(ready.values())
        assert not client.is_model_ready("add_sub")
    finally:
        client.load_model("add_sub")
    ready = cluster.handle.model_ready.remote("add_sub").result(timeout_s=60)
    assert len(ready) == 2 and all(ready.values())
    assert cluster.handle.unload_model.remote("accum").result(timeout_s=60) == sorted(ready)
    assert not any(cluster.handle.model_ready.remote("accum").result(timeout_s=60).values())
    assert sorted(cluster.handle.load_model.remote("accum").result(timeout_s=60)) == sorted(ready)


def test_metrics_page_has_every_replica(cluster: Cluster) -> None:
    a = np.ones(4, dtype=np.float32)
    client = cluster.client()
    for _ in range(4):
        client.infer("add_sub", add_sub_inputs(a, a, True))
    with urllib.request.urlopen(f"http://{cluster.url}/metrics", timeout=30) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    replicas = cluster.handle.replicas.remote().result(timeout_s=30)
    success = [line for line in text.splitlines() if line.startswith('nv_inference_request_success{')]
    assert text.count("# TYPE nv_inference_request_success counter") == 1
    for rid in replicas:
        assert any(line.startswith(f'nv_inference_request_success{{replica="{rid}",model="add_sub",version="1"}} ')
                   for line in success), (rid, success)
    total = sum(float(line.rsplit(" ", 1)[1]) for line in success if 'model="add_sub"' in line)
    assert total >= 4
    assert any(line.startswith("nv_inference_pending_request_count{replica=") for line in text.splitlines())


def _success_by_replica(cluster: Cluster, model: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{cluster.url}/metrics", timeout=30) as resp:
        text = resp.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("nv_inference_request_success{") and f'model="{model}"' in line:
            found[line.split('replica="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    return found


def test_statistics_are_summed_over_every_replica(cluster: Cluster) -> None:
    a = np.ones(4, dtype=np.float32)
    client = cluster.client()
    wait_for(lambda: (client.infer("add_sub", add_sub_inputs(a, a)) and
                      len([v for v in _success_by_replica(cluster, "add_sub").values() if v > 0]) == 2), 30,
             "both replicas to have served add_sub")
    per_replica = _success_by_replica(cluster, "add_sub")
    stats = client.get_inference_statistics("add_sub")["model_stats"]
    assert [(s["name"], s["version"]) for s in stats] == [("add_sub", "1")]
    inference = stats[0]["inference_stats"]
    assert inference["success"]["count"] == sum(per_replica.values()) > max(per_replica.values())
    assert inference["fail"]["count"] == 0
    everything = client.get_inference_statistics()["model_stats"]
    assert {s["name"] for s in everything} >= {"add_sub", "accum", "square"}
    handle_stats = cluster.handle.model_statistics.remote("add_sub").result(timeout_s=30)
    assert handle_stats["model_stats"][0]["inference_stats"]["success"]["count"] == sum(per_replica.values())
    with pytest.raises(Exception) as info:
        client.get_inference_statistics("nope")
    assert info.value.status() == "400"  # the door's (and Triton's) answer, from one replica
    assert "requested model 'nope' is not available" in info.value.message()


def _replica_pid(replica_id: str) -> int:
    actor = ray.get_actor(f"SERVE_REPLICA::tritonlite#TritonReplica#{replica_id}", namespace="serve")
    return int(ray.get(actor.__ray_call__.remote(lambda _self: __import__("os").getpid()), timeout=30))


def test_replica_killed_under_load(cluster: Cluster) -> None:
    """Requests during the kill succeed or get the retryable 503, none hang; Serve replaces the replica,
    which serves again (after replaying the model-control log); sequences re-resolve to live replicas."""
    a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    client = cluster.client()
    before = cluster.handle.replicas.remote().result(timeout_s=30)
    assert len(before) == 2
    victim, survivor = before
    victim_pid, survivor_pid = _replica_pid(victim), _replica_pid(survivor)
    # an open sequence on the replica about to die
    open_cid = next(c for c in range(900, 964) if _seq_step(client, c, 1, True, False)[1] == victim_pid)

    outcomes: list[tuple[float, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        client = cluster.client(timeout=30.0)
        for _ in range(2000):  # bounded in count and, through stop, in time
            if stop.is_set():
                return
            try:
                r = client.infer("add_sub", add_sub_inputs(a, a))
                np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), a + a)
                kind = "ok"
            except Exception as exc:  # tritonclient raises InferenceServerException
                status = getattr(exc, "status", lambda: None)()
                message = getattr(exc, "message", lambda: str(exc))()
                kind = "retry" if status == "503" and message.startswith(tlray.RETRYABLE) else f"other {status} {message}"
            with lock:
                outcomes.append((time.monotonic(), kind))

    threads = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(outcomes) >= 20, 30, "load to start")
        ray.kill(ray.get_actor(f"SERVE_REPLICA::tritonlite#TritonReplica#{victim}", namespace="serve"),
                 no_restart=True)
        killed_at = time.monotonic()
        # Serve replaces the replica; the app serves from two replicas again, the replacement synced
        wait_for(lambda: (ids := cluster.handle.replicas.remote().result(timeout_s=10)) and len(ids) == 2
                 and victim not in ids, 60, "the replacement")
        wait_for(lambda: list(cluster.handle.model_ready.remote("add_sub").result(timeout_s=30).values())
                 == [True, True], 60, "add_sub ready on both replicas")
        replaced_at = time.monotonic()
        wait_for(lambda: sum(1 for at, kind in outcomes if at > replaced_at and kind == "ok") >= 20, 30,
                 "requests served after the replacement")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not any(t.is_alive() for t in threads), "a request hung"
    others = [kind for _, kind in outcomes if kind not in ("ok", "retry")]
    assert not others, others[:5]
    assert sum(1 for at, kind in outcomes if at < killed_at and kind == "ok") >= 20
    after = cluster.handle.replicas.remote().result(timeout_s=30)
    assert survivor in after and victim not in after
    replacement_pid = _replica_pid(next(r for r in after if r != survivor))

    # the open sequence lost its replica: a clear error (Triton's START-flag one, or the retryable one)
    with pytest.raises(Exception) as info:
        _seq_step(client, open_cid, 1, False, False)
    status, message = info.value.status(), info.value.message()
    start_flag = (f"inference request for sequence {open_cid} to model 'accum' must specify the START flag on the "
                  "first request of the sequence")
    assert (status, message) == ("400", start_flag) or (status == "503" and message.startswith(tlray.RETRYABLE))
    # new sequences re-resolve over the live replicas (the replacement included) and keep their state
    pids: set[int] = set()
    for cid in range(2001, 2017):
        total = 0
        for i, value in enumerate((3, 4, 5)):
            got, pid = _seq_step(client, cid, value, i == 0, i == 2)
            total += value
            assert got == total
            pids.add(pid)
    assert pids == {survivor_pid, replacement_pid} and victim_pid not in pids
    # the handle API gives the retryable error type for an unreachable replica, the engine's own otherwise
    with pytest.raises(Exception) as engine_error:
        cluster.handle.infer.remote("nope", {"INPUT0": a, "INPUT1": a}).result(timeout_s=30)
    assert "Request for unknown model: 'nope' is not found" in str(engine_error.value)
    assert not isinstance(engine_error.value, UnavailableError)
