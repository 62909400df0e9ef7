"""``tritonlite serve --ray ADDRESS``: a second process connects to the tier's Ray cluster, deploys the
repository as its own Serve application (under a route prefix, beside the main one), prints where it
listens, serves tritonclient there, and deletes the application on SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from ray_cluster import NEEDS_RAY, QUICK_STOP, Cluster, add_sub_inputs, wait_for

pytest.importorskip("ray.serve", reason=NEEDS_RAY)
httpclient = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http]")

from ray import serve  # noqa: E402

pytestmark = pytest.mark.ray

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_serve_ray_deploys_prints_address_and_cleans_up(cluster: Cluster) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "tritonlite", "serve", "--ray", cluster.address, "--model-repository", str(cluster.repo),
           "--ray-app-name", "cli", "--ray-route-prefix", "/cli", "--ray-replicas", "1",
           "--model-control-mode", "explicit", "--load-model", "add_sub", "--allow-gpu-metrics", "false"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: any("Started HTTPService at" in line for line in lines) or proc.poll() is not None, 90,
                 "the HTTP address line")
        text = "".join(lines)
        found = re.search(r"Started HTTPService at (127\.0\.0\.1:\d+/cli) \(Ray Serve application 'cli', 1 replica", text)
        assert found, text
        # Serve was already running here, so its proxy address (not --http-port's default) is what is printed
        assert found.group(1) == f"{cluster.url}/cli"
        assert f"Started Metrics Service at {cluster.url}/cli/metrics" in text
        # Serve's gRPC proxy already carries inference.GRPCInferenceService here (the tier started it)
        assert f"Started GRPCInferenceService at [::]:{cluster.grpc_port} (Ray Serve application 'cli'" in text
        client = httpclient.InferenceServerClient(found.group(1), network_timeout=30)
        assert client.is_server_ready() and client.is_model_ready("add_sub")
        assert not client.is_model_ready("accum")  # --load-model add_sub only: the engine options travelled
        a = np.arange(4, dtype=np.float32)
        np.testing.assert_array_equal(client.infer("add_sub", add_sub_inputs(a, a)).as_numpy("OUTPUT0"), a + a)
        assert "cli" in serve.status().applications
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert code == 0, "".join(lines)
    reader.join(10)
    assert "Shutdown complete" in "".join(lines)
    deadline = time.monotonic() + 30
    while "cli" in serve.status().applications and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "cli" not in serve.status().applications


def test_serve_config_file_builds_a_working_application(cluster: Cluster) -> None:
    """examples/ray/serve_config.yaml is a valid Serve config whose application (built by its import
    path from its args, the repository pointed at the tier's) serves tritonclient."""
    import yaml
    from ray._common.utils import import_attr
    from ray.serve.schema import ServeDeploySchema

    with open(os.path.join(ROOT, "examples", "ray", "serve_config.yaml")) as fh:
        doc = yaml.safe_load(fh)
    config = ServeDeploySchema.model_validate(doc)
    assert config.http_options.host == "127.0.0.1"
    assert config.grpc_options.grpc_servicer_functions == ["tritonlite.ray.grpc_proxy:add_inference_service"]
    (app_config,) = config.applications
    args = dict(app_config.args, model_repository=str(cluster.repo))
    assert args["num_replicas"] == 2
    args.update(num_replicas=1, replica_options=QUICK_STOP, ingress_options=QUICK_STOP)  # the tier's 2 CPUs are busy
    application = import_attr(app_config.import_path)(args)
    handle = serve.run(application, name="config", route_prefix="/config", blocking=False)
    try:
        wait_for(lambda: len(handle.replicas.remote().result(timeout_s=10)) == 1, 60, "the replica")
        client = httpclient.InferenceServerClient(f"{cluster.url}/config", network_timeout=30)
        a = np.arange(4, dtype=np.float32)
        result = client.infer("add_sub", add_sub_inputs(a, a))
        np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), np.zeros(4, dtype=np.float32))
        assert client.is_model_ready("accum")  # startup_models ["*"] from the file's engine_options
    finally:
        serve.delete("config")
