"""A model repository in S3: upload a model, serve it from the bucket, add a version and watch the
repository poll pick it up.

    pip install 'tritonlite[cloud]' 'moto[server]'
    python examples/cloud_repository/client.py            # starts moto's S3 server on 127.0.0.1; engine in-process

With your own S3 endpoint (MinIO, moto, ...; credentials from the usual AWS variables) and a server
reading the bucket:

    tritonlite serve --model-repository s3://127.0.0.1:9000/models/repository \\
        --model-control-mode poll --repository-poll-secs 1
    python examples/cloud_repository/client.py --endpoint 127.0.0.1:9000 --url 127.0.0.1:8000

The client uploads ``model_repository/scale`` (config.pbtxt and version 1) under
``s3://<endpoint>/models/repository``, waits until version 1 is READY and runs it, then uploads a
``2/`` folder and waits until the poll has loaded version 2 (the default version policy keeps the
latest one). ``scale`` answers Y = X * version, so each answer shows which version ran.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import numpy as np

LOCAL = Path(__file__).resolve().parent / "model_repository"
BUCKET, PREFIX = "models", "repository"
X = np.array([1.0, 2.0, 3.0], dtype=np.float32)


def start_local_s3(stack: ExitStack) -> str:
    """moto's S3 server on a free loopback port (stopped on exit), with the dummy credentials moto accepts."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stack.callback(server.stop)
    host, port = server.get_host_and_port()
    return f"{host}:{port}"


def upload(fs: Any, local_files: list[Path], remote_names: list[str]) -> None:
    for local, name in zip(local_files, remote_names):
        fs.put_file(str(local), f"{BUCKET}/{PREFIX}/{name}")
    print("uploaded " + " ".join(remote_names))


def wait_until(ready: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", help="HOST:PORT of an S3 endpoint (default: start moto's server on 127.0.0.1)")
    parser.add_argument("--url", help="HTTP endpoint of a server polling s3://ENDPOINT/models/repository (default: in-process engine)")
    parser.add_argument("--poll-secs", type=float, default=0.5, help="repository poll interval of the in-process engine")
    args = parser.parse_args()

    import s3fs

    with ExitStack() as stack:
        endpoint = args.endpoint or start_local_s3(stack)
        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": f"http://{endpoint}"}, skip_instance_cache=True)
        if not fs.exists(BUCKET):
            fs.mkdir(BUCKET)
        repository = f"s3://{endpoint}/{BUCKET}/{PREFIX}"  # Triton's form for an S3 endpoint of your own
        print(f"repository: {repository}")
        upload(fs, [LOCAL / "scale" / "config.pbtxt", LOCAL / "scale" / "1" / "model.py"],
               ["scale/config.pbtxt", "scale/1/model.py"])

        if args.url:
            import tritonclient.http as httpclient

            client = httpclient.InferenceServerClient(args.url)
            stack.callback(client.close)

            def is_ready(version: int) -> bool:
                return bool(client.is_model_ready("scale", str(version)))

            def infer() -> tuple[str, list[float]]:
                inp = httpclient.InferInput("X", [3], "FP32")
                inp.set_data_from_numpy(X)
                result = client.infer("scale", [inp])
                return result.get_response()["model_version"], result.as_numpy("Y").tolist()
        else:
            from tritonlite import InferenceEngine

            engine = stack.enter_context(InferenceEngine(repository, model_control_mode="poll",
                                                         repository_poll_secs=args.poll_secs))

            def is_ready(version: int) -> bool:
                return engine.is_model_ready("scale", version)

            def infer() -> tuple[str, list[float]]:
                result = engine.infer("scale", {"X": X})
                return result.model_version, result.as_numpy("Y").tolist()

        wait_until(lambda: is_ready(1), "version 1")
        version, y = infer()
        print(f"scale version {version}: {X.tolist()} -> {y}")
        upload(fs, [LOCAL / "scale" / "1" / "model.py"], ["scale/2/model.py"])  # a new version folder
        wait_until(lambda: is_ready(2), "the poll to load version 2")
        version, y = infer()
        print(f"poll loaded version {version}: {X.tolist()} -> {y}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
