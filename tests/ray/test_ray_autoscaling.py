"""Autoscaling on the engines' queue depth: QueueDepthPolicy's rule on Serve's own context objects,
and a real application on the tier's cluster that scales up under load (only the engines' pending
queue can ask for it: ``target_ongoing_requests`` is far above the load) and back down after it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from model_repos import write_model
from ray_cluster import NEEDS_RAY, QUICK_STOP, Cluster, wait_for

pytest.importorskip("ray.serve", reason=NEEDS_RAY)
httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")

from ray import serve  # noqa: E402
from ray.serve._private.common import DeploymentID  # noqa: E402
from ray.serve.config import AutoscalingConfig, AutoscalingContext  # noqa: E402

import tritonlite.ray as tlray  # noqa: E402

pytestmark = pytest.mark.ray

APP = "autoscale"

# one instance, no batching, 0.2 s a request: a handful of concurrent clients queue in the engine
SLOW_PY = """
import time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        time.sleep(0.2 * len(requests))
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())])
                for r in requests]
"""

SLOW_CONFIG = """
name: "slow"
backend: "python"
input [ { name: "IN" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
"""


def _context(current: int, ongoing: float, pending: list[float], target_ongoing: float = 10.0) -> AutoscalingContext:
    dep = DeploymentID(name="TritonReplica", app_name="app")
    return AutoscalingContext(
        deployment_id=dep, deployment_name=dep.name, app_name=dep.app_name, current_num_replicas=current,
        target_num_replicas=current, running_replicas=[], total_num_requests=ongoing, total_queued_requests=None,
        aggregated_metrics={tlray.PENDING_METRIC: {f"r{i}": v for i, v in enumerate(pending)}}, raw_metrics=None,
        capacity_adjusted_min_replicas=1, capacity_adjusted_max_replicas=8, policy_state={"kept": 1},
        last_scale_up_time=None, last_scale_down_time=None, current_time=None,
        config=AutoscalingConfig(target_ongoing_requests=target_ongoing, min_replicas=1, max_replicas=8))


def test_policy_adds_a_replica_when_engine_queues_pass_the_target() -> None:
    policy = tlray.QueueDepthPolicy(target_pending_requests=2)
    desired, state = policy(_context(current=2, ongoing=6, pending=[3.0, 2.0]))  # 5 > 2 per replica x 2
    assert desired == 3 and state["kept"] == 1 and state["tritonlite_pending"] == 5.0
    desired, _ = policy(_context(current=2, ongoing=6, pending=[2.0, 2.0]))  # 4: not above 2 x 2, still queued
    assert desired == 2
    desired, _ = policy(_context(current=2, ongoing=60, pending=[0.0, 0.0]))  # Serve's rule: 60 / 10
    assert desired == 6.0


def test_policy_scales_down_only_with_empty_queues() -> None:
    policy = tlray.QueueDepthPolicy(target_pending_requests=2)
    assert policy(_context(current=3, ongoing=0, pending=[0.5, 0.0, 0.0]))[0] == 3
    assert policy(_context(current=3, ongoing=4, pending=[0.0, 0.0, 0.0]))[0] == 0.4
    with pytest.raises(ValueError, match="target_pending_requests must be > 0, got 0"):
        tlray.QueueDepthPolicy(target_pending_requests=0)


@pytest.fixture(scope="module")
def scaling_app(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    repo: Path = tmp_path_factory.mktemp("autoscale") / "models"
    write_model(repo, "slow", SLOW_CONFIG, {"1/model.py": SLOW_PY})
    application = tlray.app(
        repo,
        autoscaling_config={"min_replicas": 1, "max_replicas": 2, "initial_replicas": 1,
                            "target_ongoing_requests": 50, "target_pending_requests": 1,
                            "metrics_interval_s": 0.2, "look_back_period_s": 1.0,
                            "upscale_delay_s": 0.0, "downscale_delay_s": 1.0},
        replica_options=QUICK_STOP, ingress_options=QUICK_STOP,
        engine_options={"gpu_metrics": False})
    handle = serve.run(application, name=APP, route_prefix=f"/{APP}", blocking=False)
    wait_for(lambda: len(handle.replicas.remote().result(timeout_s=10)) == 1, 60, "one replica")
    try:
        yield handle
    finally:
        serve.delete(APP)


def test_scales_up_on_engine_queue_and_back_down(cluster: Cluster, scaling_app: Any) -> None:
    stop = threading.Event()
    answers: list[int] = []

    def load(i: int) -> None:  # tritonclient under Serve's route prefix
        client = httpclient.InferenceServerClient(f"{cluster.url}/{APP}", network_timeout=30)
        x = httpclient.InferInput("IN", [1], "INT32")
        x.set_data_from_numpy(np.array([i], dtype=np.int32))
        for _ in range(1000):  # bounded in count and, through stop, in time
            if stop.is_set():
                return
            answers.append(int(client.infer("slow", [x]).as_numpy("OUT")[0]) - i)

    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(6)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(scaling_app.replicas.remote().result(timeout_s=10)) == 2, 45,
                 "a second replica under load")
        served = len(answers)
        wait_for(lambda: len(answers) > served + 10, 30, "requests served by two replicas")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert answers and set(answers) == {0}
    wait_for(lambda: len(scaling_app.replicas.remote().result(timeout_s=10)) == 1, 45, "back to one replica")
