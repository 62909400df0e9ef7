"""tritonlite on a real local Ray cluster (Serve, two replicas): the KServe v2 HTTP protocol through
Serve's proxy with the official tritonclient, sequence affinity, model control on every replica,
merged metrics, a replica killed under load, and a shutdown that leaves no process behind.

One module-scoped cluster (``ray.init`` with 2 CPUs, loopback only); every wait is bounded."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from model_repos import EXAMPLES, write_model

ray = pytest.importorskip("ray", reason="tritonlite.ray needs Ray Serve: pip install 'tritonlite[ray]'")
serve = pytest.importorskip("ray.serve", reason="tritonlite.ray needs Ray Serve: pip install 'tritonlite[ray]'")
httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")

import tritonlite.ray as tlray  # noqa: E402

pytestmark = pytest.mark.ray

RETRYABLE = "tritonlite replica unavailable, retry the request"

# OUTPUT = running sum of INPUT over the sequence (state kept in the model, per correlation id);
# PID tells which replica process answered. max_batch_size 32: the direct strategy gives 32 sequence slots.
ACCUM_PY = """
import os
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.totals = {}

    def execute(self, requests):
        responses = []
        for r in requests:
            cid = r.correlation_id()
            start = bool(pb_utils.get_input_tensor_by_name(r, "START").as_numpy().reshape(-1)[0])
            x = int(pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy().reshape(-1)[0])
            total = (0 if start else self.totals.get(cid, 0)) + x
            self.totals[cid] = total
            responses.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("OUTPUT", np.array([[total]], dtype=np.int32)),
                pb_utils.Tensor("PID", np.array([[os.getpid()]], dtype=np.int32)),
            ]))
        return responses
"""

ACCUM_CONFIG = """
name: "accum"
backend: "python"
max_batch_size: 32
input [ { name: "INPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUTPUT" data_type: TYPE_INT32 dims: [ 1 ] }, { name: "PID" data_type: TYPE_INT32 dims: [ 1 ] } ]
sequence_batching {
  max_sequence_idle_microseconds: 60000000
  direct { }
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] }
  ]
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(root: int) -> set[int]:
    """PIDs of every process below ``root`` (from /proc), so teardown can prove they are gone."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Cluster:
    def __init__(self, root: Path) -> None:
        repo = root / "models"
        shutil.copytree(EXAMPLES / "model_repository" / "add_sub", repo / "add_sub")
        write_model(repo, "accum", ACCUM_CONFIG, {"1/model.py": ACCUM_PY})
        self.port = _free_port()
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(root / "ray"), log_to_driver=False,
                 configure_logging=False)
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})
        application = tlray.app(repo, num_replicas=2, control_timeout_s=60.0,
                                engine_options={"model_control_mode": "explicit", "startup_models": ["*"],
                                                "gpu_metrics": False})
        self.handle = serve.run(application, name="tritonlite", route_prefix="/", blocking=False)
        _wait(lambda: len(self.handle.replicas.remote().result(timeout_s=10)) == 2, 90, "two replicas")
        self.url = f"127.0.0.1:{self.port}"
        self.stopped = False
        self.killed = ""  # unique id of the replica the kill test stopped

    def client(self, timeout: float = 30.0) -> Any:
        return httpclient.InferenceServerClient(self.url, network_timeout=timeout, connection_timeout=timeout)

    def stop(self) -> set[int]:
        """Shut Serve and Ray down; return the PIDs that were running under this process."""
        if self.stopped:
            return set()
        self.stopped = True
        pids = _descendants(os.getpid())
        serve.shutdown()
        ray.shutdown()
        return pids


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("ray"))
    try:
        yield c
    finally:
        c.stop()


def _add_sub_inputs(a: np.ndarray, b: np.ndarray, binary: bool) -> list[Any]:
    inputs = [httpclient.InferInput("INPUT0", [4], "FP32"), httpclient.InferInput("INPUT1", [4], "FP32")]
    inputs[0].set_data_from_numpy(a, binary_data=binary)
    inputs[1].set_data_from_numpy(b, binary_data=binary)
    return inputs


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
    result = client.infer("add_sub", _add_sub_inputs(a, b, binary), outputs=outputs)
    for name, expected in (("OUTPUT0", a + b), ("OUTPUT1", a - b)):
        got = result.as_numpy(name)
        assert got.dtype == np.float32 and got.shape == (4,)
        np.testing.assert_array_equal(got, expected)


def test_errors_keep_triton_status_and_text(cluster: Cluster) -> None:
    client = cluster.client()
    a = np.zeros(4, dtype=np.float32)
    with pytest.raises(Exception) as info:
        client.infer("nope", _add_sub_inputs(a, a, True))
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
        client.infer("add_sub", _add_sub_inputs(a, a, True))
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


def test_replica_killed_under_load(cluster: Cluster) -> None:
    """Requests during the kill succeed or get the retryable 503; none hang; Serve restarts the replica."""
    a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    outcomes: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load() -> None:
        client = cluster.client(timeout=30.0)
        for _ in range(400):  # bounded in count and, through stop, in time
            if stop.is_set():
                return
            try:
                r = client.infer("add_sub", _add_sub_inputs(a, a, True))
                np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), a + a)
                kind = "ok"
            except Exception as exc:  # tritonclient raises InferenceServerException
                status = getattr(exc, "status", lambda: None)()
                message = getattr(exc, "message", lambda: str(exc))()
                kind = "retry" if status == "503" and message.startswith(RETRYABLE) else f"other {status} {message}"
            with lock:
                outcomes.append(kind)

    before = cluster.handle.replicas.remote().result(timeout_s=30)
    threads = [threading.Thread(target=load, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    _wait(lambda: len(outcomes) >= 20, 30, "load to start")
    victim = ray.get_actor(f"SERVE_REPLICA::tritonlite#TritonReplica#{before[0]}", namespace="serve")
    ray.kill(victim, no_restart=True)
    _wait(lambda: before[0] not in cluster.handle.replicas.remote().result(timeout_s=10), 30, "the kill")
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a request hung"
    others = [o for o in outcomes if o not in ("ok", "retry")]
    assert not others, others[:5]
    assert outcomes.count("ok") >= 20
    cluster.killed = before[0]


@pytest.mark.xfail(run=False, reason="known gap: Serve restarts the replica, but calls the ingress targets at the "
                   "replacement (model control, metrics) time out; see /work/notes/issue-12-ray.md")
def test_killed_replica_is_replaced(cluster: Cluster) -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    # Serve replaces the replica; the app serves from two replicas again
    _wait(lambda: len(cluster.handle.replicas.remote().result(timeout_s=10)) == 2
          and len(cluster.handle.model_ready.remote("add_sub").result(timeout_s=30)) == 2, 90, "the replacement")
    after = cluster.handle.replicas.remote().result(timeout_s=30)
    assert cluster.killed not in after
    r = cluster.client().infer("add_sub", _add_sub_inputs(a, a, False))
    np.testing.assert_array_equal(r.as_numpy("OUTPUT1"), np.zeros(4, dtype=np.float32))


def test_shutdown_leaves_no_process(cluster: Cluster) -> None:
    pids = cluster.stop()
    assert len(pids) >= 4  # gcs, raylet, the Serve controller/proxy and the replicas ran below us
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert [p for p in pids if _alive(p)] == []
    with socket.socket() as s:  # nothing listens on the proxy's port (REUSEADDR: client TIME_WAITs remain)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", cluster.port))
