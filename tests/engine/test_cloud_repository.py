"""Cloud model repositories against a real local S3 endpoint: moto's server on 127.0.0.1 (free port),
started and stopped by the fixture. Triton's URL forms, local copies, poll mode, explicit load,
unreachable endpoints and buckets."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

from tritonlite import InferenceEngine, UnavailableError  # noqa: E402
from tritonlite.remote_repository import parse_url  # noqa: E402

from model_repos import IDENTITY_PY, identity_py_config  # noqa: E402

BUCKET = "models"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on loopback; AWS credentials for it in the environment while it runs."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    mp = pytest.MonkeyPatch()
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        mp.setenv(key, value)
    mp.delenv("TRITON_AWS_MOUNT_DIRECTORY", raising=False)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()
        mp.undo()


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=f"http://{s3_endpoint}")


def _put_model(s3: Any, prefix: str, name: str, versions: tuple[int, ...] = (1,), extra: str = "") -> None:
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}/config.pbtxt", Body=identity_py_config(name, extra=extra).encode())
    for v in versions:
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}/{v}/model.py", Body=IDENTITY_PY.encode())


def _wait(predicate: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_triton_url_forms() -> None:
    custom = parse_url("s3://127.0.0.1:9000/bucket/path/to/repo/")
    assert (custom.protocol, custom.root) == ("s3", "bucket/path/to/repo")
    assert custom.options["client_kwargs"] == {"endpoint_url": "http://127.0.0.1:9000"}
    secure = parse_url("s3://https://minio.local:443/bucket")
    assert secure.root == "bucket" and secure.options["client_kwargs"] == {"endpoint_url": "https://minio.local:443"}
    aws = parse_url("s3://bucket/repo")
    assert aws.root == "bucket/repo" and "client_kwargs" not in aws.options
    assert (parse_url("gs://b/p").protocol, parse_url("gs://b/p").root) == ("gcs", "b/p")
    azure = parse_url("as://account/container/repo")
    assert (azure.protocol, azure.root, azure.options["account_name"]) == ("abfs", "container/repo", "account")


def test_a_bucket_repository_serves_its_models(s3: Any, s3_endpoint: str) -> None:
    _put_model(s3, "serve", "ident_a")
    _put_model(s3, "serve", "ident_b", versions=(1, 2))
    s3.put_object(Bucket=BUCKET, Key="serve/README.md", Body=b"not a model")
    url = f"s3://{s3_endpoint}/{BUCKET}/serve"
    with InferenceEngine(url) as engine:
        x = np.arange(4, dtype=np.float32)
        np.testing.assert_array_equal(engine.infer("ident_a", {"INPUT0": x}).as_numpy("OUTPUT0"), x)
        assert engine.infer("ident_b", {"INPUT0": x}).model_version == "2"
        assert [m["name"] for m in engine.repository_index()] == ["ident_a", "ident_b"]
        cache = engine._manager.roots[0].cache_dir
        assert sorted(p.name for p in cache.iterdir()) == ["ident_a", "ident_b"]
        assert (cache / "ident_b" / "2" / "model.py").read_text() == IDENTITY_PY
    assert not cache.exists()  # the temporary copies go with the engine


def test_explicit_load_fetches_only_that_model(s3: Any, s3_endpoint: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _put_model(s3, "explicit", "wanted")
    _put_model(s3, "explicit", "other")
    mount = tmp_path / "mount"
    monkeypatch.setenv("TRITON_AWS_MOUNT_DIRECTORY", str(mount))
    with InferenceEngine(f"s3://{s3_endpoint}/{BUCKET}/explicit", model_control_mode="explicit") as engine:
        assert not engine.is_model_ready("wanted")
        engine.load_model("wanted")
        assert engine.is_model_ready("wanted") and not engine.is_model_ready("other")
        assert sorted(p.name for p in mount.iterdir()) == ["wanted"]
    assert (mount / "wanted" / "config.pbtxt").is_file()  # a mount directory you chose is kept


def test_poll_mode_notices_new_versions_config_changes_and_removals(s3: Any, s3_endpoint: str) -> None:
    _put_model(s3, "poll", "polled")
    _put_model(s3, "poll", "stays")
    with InferenceEngine(f"s3://{s3_endpoint}/{BUCKET}/poll", model_control_mode="poll", repository_poll_secs=0.1) as engine:
        x = np.ones(4, np.float32)
        assert engine.infer("polled", {"INPUT0": x}).model_version == "1"
        s3.put_object(Bucket=BUCKET, Key="poll/polled/2/model.py", Body=IDENTITY_PY.encode())
        assert _wait(lambda: engine.is_model_ready("polled", "2")), "the new version folder was never loaded"
        assert engine.infer("polled", {"INPUT0": x}).model_version == "2"
        # a changed config: serve every version
        _put_model(s3, "poll", "polled", versions=(), extra="version_policy: { all { } }")
        assert _wait(lambda: engine.is_model_ready("polled", "1") and engine.is_model_ready("polled", "2"))
        assert engine.model_config("polled")["version_policy"] == {"all": {}}
        s3.delete_object(Bucket=BUCKET, Key="poll/stays/config.pbtxt")
        s3.delete_object(Bucket=BUCKET, Key="poll/stays/1/model.py")
        assert _wait(lambda: not engine.is_model_ready("stays")), "a removed model was never unloaded"
        assert engine.infer("polled", {"INPUT0": x}).model_version == "2"


def test_unreachable_endpoint_or_bucket_is_a_clear_error(s3_endpoint: str) -> None:
    port = _free_port()
    url = f"s3://127.0.0.1:{port}/{BUCKET}/repo"
    started = time.monotonic()
    with pytest.raises(UnavailableError) as err:
        InferenceEngine(url)
    assert str(err.value).startswith(f"failed to poll model repository '{url}': Could not connect to the endpoint URL")
    assert time.monotonic() - started < 30
    missing = f"s3://{s3_endpoint}/no-such-bucket"
    with pytest.raises(UnavailableError, match=f"failed to poll model repository '{missing}': The specified bucket does not exist"):
        InferenceEngine(missing)


def test_an_endpoint_that_goes_away_keeps_loaded_models_serving(tmp_path: Path) -> None:
    """Its own server, stopped mid-test: loads fail naming model and repository, loaded models serve on."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    client = boto3.client("s3", endpoint_url=f"http://{host}:{port}")
    client.create_bucket(Bucket=BUCKET)
    _put_model(client, "gone", "loaded")
    _put_model(client, "gone", "later")
    url = f"s3://{host}:{port}/{BUCKET}/gone"
    local = tmp_path / "local"
    (local / "local_model" / "1").mkdir(parents=True)
    (local / "local_model" / "config.pbtxt").write_text(identity_py_config("local_model"))
    (local / "local_model" / "1" / "model.py").write_text(IDENTITY_PY)
    try:
        engine = InferenceEngine([url, str(local)], model_control_mode="explicit", startup_models=["loaded", "local_model"])
    finally:
        server.stop()
    with engine:
        with pytest.raises(UnavailableError) as err:
            engine.load_model("later")
        assert str(err.value).startswith(
            f"failed to load 'later', failed to poll from model repository: failed to poll model repository '{url}': "
        )
        x = np.full(4, 3, np.float32)
        np.testing.assert_array_equal(engine.infer("loaded", {"INPUT0": x}).as_numpy("OUTPUT0"), x)
        np.testing.assert_array_equal(engine.infer("local_model", {"INPUT0": x}).as_numpy("OUTPUT0"), x)
