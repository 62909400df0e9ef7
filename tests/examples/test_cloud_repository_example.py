"""examples/cloud_repository against moto's S3 server on loopback: in-process (the example starts moto
itself) and against ``tritonlite serve --model-repository s3://HOST:PORT/models/repository`` in poll mode,
which starts with the bucket empty and picks up the model, then its version 2, as the client uploads them."""

from __future__ import annotations

import logging
import urllib.request
from typing import Iterator

import pytest

from model_repos import EXAMPLES, run_example

pytest.importorskip("s3fs", reason="s3fs is not installed (pip install 'tritonlite[cloud]')")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")

CLIENT = EXAMPLES / "cloud_repository" / "client.py"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _run(*args: str) -> list[str]:
    return run_example("cloud_repository", *args, env=CREDENTIALS)


def _expected(endpoint: str) -> list[str]:
    return [
        f"repository: s3://{endpoint}/models/repository",
        "uploaded scale/config.pbtxt scale/1/model.py",
        "scale version 1: [1.0, 2.0, 3.0] -> [1.0, 2.0, 3.0]",
        "uploaded scale/2/model.py",
        "poll loaded version 2: [1.0, 2.0, 3.0] -> [2.0, 4.0, 6.0]",
    ]


def test_cloud_repository_example_in_process() -> None:
    lines = _run()
    endpoint = lines[0].removeprefix("repository: s3://").removesuffix("/models/repository")
    assert endpoint.startswith("127.0.0.1:")
    assert lines == _expected(endpoint)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on loopback with an empty "models" bucket; its credentials in this process's environment."""
    import s3fs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its buckets per process, not per server: start from none (other tests made theirs)
    urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"), timeout=10).close()
    try:
        s3fs.S3FileSystem(client_kwargs={"endpoint_url": f"http://{host}:{port}"}, skip_instance_cache=True).mkdir("models")
        yield f"{host}:{port}"
    finally:
        server.stop()


def test_cloud_repository_example_against_tritonlite_serve(s3_endpoint: str) -> None:
    pytest.importorskip("tritonclient.http", reason="tritonclient is not installed (pip install 'tritonclient[all]')")
    from served import ServedProcess

    flags = ["--model-control-mode", "poll", "--repository-poll-secs", "0.3"]
    with ServedProcess(f"s3://{s3_endpoint}/models/repository", flags) as server:  # type: ignore[arg-type]
        lines = _run("--endpoint", s3_endpoint, "--url", server.http)
    assert lines == _expected(s3_endpoint)
