"""The ``ray`` tier's cluster: one local Ray cluster (Serve's HTTP proxy on 127.0.0.1, its gRPC proxy
carrying ``inference.GRPCInferenceService``) and the main application on it, two replicas of a
repository with add_sub, a stateful sequence model and a decoupled model; plus the tier's helpers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from model_repos import EXAMPLES, SQUARE_INT32_PY, write_model

try:  # each test module skips itself (importorskip) when these are absent
    import ray
    import tritonclient.http as httpclient
    from ray import serve

    import tritonlite.ray as tlray
except ImportError:  # pragma: no cover - depends on the environment
    pass

NEEDS_RAY = "tritonlite.ray needs Ray Serve: pip install 'tritonlite[ray]'"
APP = "tritonlite"

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

SQUARE_CONFIG = """
name: "square"
backend: "python"
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
model_transaction_policy { decoupled: true }
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def descendants(root: int) -> set[int]:
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


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# quick shutdown for test applications: Serve waits 2 s (and up to 20 s) for a stopping replica by default
QUICK_STOP = {"graceful_shutdown_wait_loop_s": 0.2, "graceful_shutdown_timeout_s": 2.0}


def add_sub_inputs(a: np.ndarray, b: np.ndarray, binary: bool = True) -> list[Any]:
    inputs = [httpclient.InferInput("INPUT0", [4], "FP32"), httpclient.InferInput("INPUT1", [4], "FP32")]
    inputs[0].set_data_from_numpy(a, binary_data=binary)
    inputs[1].set_data_from_numpy(b, binary_data=binary)
    return inputs


class Cluster:
    """The tier's Ray cluster, Serve's proxies and the main application."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.repo = root / "models"
        shutil.copytree(EXAMPLES / "model_repository" / "add_sub", self.repo / "add_sub")
        write_model(self.repo, "accum", ACCUM_CONFIG, {"1/model.py": ACCUM_PY})
        write_model(self.repo, "square", SQUARE_CONFIG, {"1/model.py": SQUARE_INT32_PY})
        self.port = free_port()
        self.grpc_port = free_port()
        self.stopped = False
        # ray.init leaves a SIGTERM handler and RAY_* variables in this process: put them back at stop()
        self._environ, self._sigterm = dict(os.environ), signal.getsignal(signal.SIGTERM)
        self._before = descendants(os.getpid())  # other tests' children are not the cluster's
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=str(root / "ray"), log_to_driver=False,
                 configure_logging=False, _node_ip_address="127.0.0.1")
        self.address = ray.get_runtime_context().gcs_address
        serve.start(http_options={"host": "127.0.0.1", "port": self.port},
                    grpc_options=tlray.grpc_options(self.grpc_port))
        application = tlray.app(self.repo, num_replicas=2, control_timeout_s=60.0, request_timeout_s=60.0,
                                replica_options={"health_check_period_s": 1.0, "health_check_timeout_s": 5.0,
                                                 **QUICK_STOP},
                                ingress_options=QUICK_STOP,
                                engine_options={"model_control_mode": "explicit", "startup_models": ["*"],
                                                "gpu_metrics": False})
        self.handle = serve.run(application, name=APP, route_prefix="/", blocking=False)
        wait_for(lambda: len(self.handle.replicas.remote().result(timeout_s=10)) == 2, 90, "two replicas")
        self.url = f"127.0.0.1:{self.port}"
        self.killed = ""  # unique id of the replica the kill test stopped

    def client(self, timeout: float = 30.0) -> Any:
        return httpclient.InferenceServerClient(self.url, network_timeout=timeout, connection_timeout=timeout)

    def stop(self) -> set[int]:
        """Shut Serve and Ray down; return the PIDs the cluster had started below this process."""
        if self.stopped:
            return set()
        self.stopped = True
        pids = descendants(os.getpid()) - self._before
        serve.shutdown()
        ray.shutdown()
        signal.signal(signal.SIGTERM, self._sigterm)
        os.environ.clear()
        os.environ.update(self._environ)
        return pids
