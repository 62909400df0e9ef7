"""``tritonlite serve --cache-config``: Triton's syntax, one-line errors with exit status 1, hits over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from model_repos import IDENTITY_PY, identity_py_config, write_model

httpclient = pytest.importorskip("tritonclient.http")
ROOT = Path(__file__).resolve().parents[2]


def _serve(args: list[str]) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "tritonlite", "serve", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cache_cli") / "models"
    write_model(root, "cached_py", identity_py_config("cached_py", extra="response_cache { enable: true }"),
                {"1/model.py": IDENTITY_PY})
    return root


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--cache-config", "local,size=big"], "error: creating server: Invalid argument - cache config 'local' setting 'size' must be a positive integer, got 'big'"),
        (["--cache-config", "size=10"], "error: creating server: Invalid argument - No cache specified. --cache-config option format is "
                                         "<cache name>,<setting>=<value>. Got size=10"),
        (["--cache-config", "local,size"], "error: creating server: Invalid argument - --cache-config option format is "
                                            "'<cache name>,<setting>=<value>'. Got local,size"),
        (["--cache-config", "local,size=10", "--response-cache-byte-size", "10"],
         "error: creating server: Invalid argument - Error: Incompatible flags --response-cache-byte-size and --cache-config both provided. "
         "Please provide one or the other."),
    ],
)
def test_bad_cache_config_is_one_line_and_exit_1(repo: Path, flags: list[str], message: str) -> None:
    proc = _serve(["--model-repository", str(repo), "--allow-grpc", "false", "--allow-metrics", "false", *flags])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, (out, err)
    assert err.strip().splitlines() == [message]


def test_serve_with_a_local_cache_answers_the_second_request_from_it(repo: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _serve(["--model-repository", str(repo), "--allow-grpc", "false", "--allow-metrics", "false",
                   "--http-address", "127.0.0.1", "--http-port", str(port), "--cache-config", "local,size=1048576"])
    try:
        client = httpclient.InferenceServerClient(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.is_server_ready():
                    break
            except Exception:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        x = np.arange(4, dtype=np.float32)
        inp = httpclient.InferInput("INPUT0", [4], "FP32")
        inp.set_data_from_numpy(x)
        for _ in range(2):
            np.testing.assert_array_equal(client.infer("cached_py", [inp]).as_numpy("OUTPUT0"), x)
        stats = client.get_inference_statistics("cached_py")["model_stats"][0]
        assert stats["inference_stats"]["cache_hit"]["count"] == 1
        assert stats["inference_stats"]["cache_miss"]["count"] == 1
        assert stats["execution_count"] == 1
        client.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
