"""``python -m tritonlite serve``: start as a subprocess, serve tritonclient, drain on SIGTERM, exit 0."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

httpclient = pytest.importorskip("tritonclient.http")

from http_models import SLOW_PY  # noqa: E402
from http_raw import request  # noqa: E402
from model_repos import IDENTITY_PY, identity_py_config, write_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cli_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "models"
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    write_model(root, "slow_py", identity_py_config("slow_py", dims="[ 1 ]"), {"1/model.py": SLOW_PY})
    return root


def _start(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "tritonlite", "serve", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_ready(proc: subprocess.Popen, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early ({proc.returncode}): {proc.stdout.read() if proc.stdout else ''}")
        try:
            if request(url, "GET", "/v2/health/ready", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not become ready in time")


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def test_serve_infer_and_sigterm_drains_then_exits_0(cli_repo: Path, stopper: list[subprocess.Popen]) -> None:
    port = _free_port()
    url = f"127.0.0.1:{port}"
    proc = _start(["--model-repository", str(cli_repo), "--allow-grpc", "false", "--allow-metrics", "false",
                   "--http-port", str(port), "--http-address", "127.0.0.1", "--exit-timeout-secs", "20"])
    stopper.append(proc)
    _wait_ready(proc, url)
    client = httpclient.InferenceServerClient(url)
    try:
        x = np.arange(4, dtype=np.float32)
        inp = httpclient.InferInput("INPUT0", [4], "FP32")
        inp.set_data_from_numpy(x)
        np.testing.assert_array_equal(client.infer("identity_py", [inp]).as_numpy("OUTPUT0"), x)
        assert client.get_server_metadata()["name"] == "triton"
    finally:
        client.close()
    slow = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [5]}]}).encode()
    with ThreadPoolExecutor(1) as pool:
        fut = pool.submit(request, url, "POST", "/v2/models/slow_py/infer", slow)
        time.sleep(0.1)  # the request is in flight
        proc.send_signal(signal.SIGTERM)
        status, _, body = fut.result(timeout=30)
    assert status == 200 and json.loads(body)["outputs"][0]["data"] == [5.0]
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"Started HTTPService at 127.0.0.1:{port}" in out and "Shutdown complete" in out


def test_serve_with_grpc_and_metrics_and_sigint(cli_repo: Path, stopper: list[subprocess.Popen]) -> None:
    try:
        import tritonlite.grpc  # noqa: F401  (skip when the gRPC door is missing)
    except ImportError as exc:  # pragma: no cover - depends on the grpc extra
        pytest.skip(f"gRPC server not available: {exc}")
    http_port, grpc_port, metrics_port = _free_port(), _free_port(), _free_port()
    proc = _start(["--model-repository", str(cli_repo), "--http-port", str(http_port), "--grpc-port", str(grpc_port),
                   "--metrics-port", str(metrics_port), "--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1",
                   "--metrics-address", "127.0.0.1", "--allow-client-shm", "true", "--model-control-mode", "explicit",
                   "--load-model", "identity_py", "--allow-gpu-metrics", "false", "--metrics-config", "summary_latencies=true"])
    stopper.append(proc)
    url = f"127.0.0.1:{http_port}"
    _wait_ready(proc, url)
    assert request(url, "GET", "/v2/models/identity_py/ready")[0] == 200
    assert request(url, "GET", "/v2/models/slow_py/ready")[0] != 200  # explicit: only --load-model models
    import tritonclient.grpc as grpcclient

    g = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
    try:
        assert g.is_server_live() and g.is_model_ready("identity_py")
    except Exception:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        raise AssertionError(f"gRPC on {grpc_port} (http {http_port}, metrics {metrics_port}) failed; server output:\n{out}")
    finally:
        g.close()
    status, _, body = request(f"127.0.0.1:{metrics_port}", "GET", "/metrics")
    assert status == 200 and b"nv_inference" in body
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    # talks like tritonserver: its log line format, load/unload wording, tables, bound addresses once each
    line = re.compile(r'^I\d{4} \d{2}:\d{2}:\d{2}\.\d{6} %d model_manager\.py:\d+\] "successfully loaded \'identity_py\' version 1"$'
                      % proc.pid, re.M)
    assert line.search(out), out
    assert "\"successfully unloaded 'identity_py' version 1\"" in out
    assert "| Model       | Version | Status |\n+-------------+---------+--------+\n| identity_py | 1       | READY  |" in out
    assert "| model_control_mode       | MODE_EXPLICIT" in out and "| startup_models_0         | identity_py" in out
    for started in (f"Started GRPCInferenceService at 127.0.0.1:{grpc_port}", f"Started HTTPService at 127.0.0.1:{http_port}",
                    f"Started Metrics Service at 127.0.0.1:{metrics_port}"):
        assert out.count(started) == 1, out


def test_bad_arguments_and_startup_failures(tmp_path: Path, cli_repo: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    run = lambda *a: subprocess.run([sys.executable, "-m", "tritonlite", "serve", *a], cwd=ROOT, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    r = run("--model-repository", str(cli_repo), "--allow-http", "maybe")
    assert r.returncode == 1 and r.stderr == ("error: argument --allow-http: expected true or false, got 'maybe' "
                                              "(see 'tritonlite serve --help')\n")
    r = run("--model-repository", str(tmp_path / "missing"), "--allow-grpc", "false", "--allow-metrics", "false")
    assert r.returncode == 1 and r.stderr == (f"error: creating server: Invalid argument - model repository path "
                                              f"'{tmp_path / 'missing'}' is not a directory\n")
    bad = tmp_path / "bad"
    write_model(bad, "broken_py", identity_py_config("broken_py"), {"1/model.py": "raise ImportError('nope')\n"})
    r = run("--model-repository", str(bad), "--allow-grpc", "false", "--allow-metrics", "false", "--http-port", str(_free_port()))
    assert r.returncode == 1 and "failed to load all models" in r.stderr and "Traceback" not in r.stderr
    assert re.search(r"^E\d{4} [0-9:.]+ \d+ model_manager\.py:\d+\] \"failed to load model 'broken_py': unable to load", r.stderr, re.M)
    assert "| broken_py | -       | UNAVAILABLE: unable to load model 'broken_py'" in r.stderr  # Triton's model table
    unparsable = tmp_path / "unparsable"
    write_model(unparsable, "bad_cfg", "name: 'bad_cfg' backend: ", {"1/model.py": IDENTITY_PY})
    r = run("--model-repository", str(unparsable), "--allow-grpc", "false", "--allow-metrics", "false", "--http-port", "0")
    assert r.returncode == 1 and "failed to load model 'bad_cfg': " in r.stderr and "version ?" not in r.stderr


def test_http_serve_function_blocks_until_signal(cli_repo: Path, stopper: list[subprocess.Popen]) -> None:
    port = _free_port()
    code = f"from tritonlite.http import serve; serve({str(cli_repo)!r}, host='127.0.0.1', port={port}, exit_timeout_secs=5)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stopper.append(proc)
    url = f"127.0.0.1:{port}"
    _wait_ready(proc, url)
    assert request(url, "GET", "/v2/models/identity_py/ready")[0] == 200
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def test_console_script_entry_point() -> None:
    from tritonlite.cli import build_parser, main

    args = build_parser().parse_args(["serve", "--model-repository", "a", "--model-repository", "b", "--load-model", "x",
                                      "--load-model", "y", "--allow-grpc=false", "--metrics-config", "summary_latencies=true"])
    assert args.model_repository == ["a", "b"] and args.load_model == ["x", "y"] and args.allow_grpc is False
    assert args.metrics_config == [("summary_latencies", "true")] and args.http_port == 8000 and args.grpc_port == 8001
    assert args.exit_timeout_secs == 30 and args.http_max_input_size == 64 * 1024 * 1024 and args.allow_client_shm is False
    assert (args.http_address, args.grpc_address, args.metrics_address) == ("127.0.0.1",) * 3  # loopback unless asked
    assert args.log_format == "default"
    with pytest.raises(SystemExit):
        main(["serve"])  # --model-repository is required
