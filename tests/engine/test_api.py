"""The public InferenceEngine API end to end, with real onnxruntime and real model.py files."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

import numpy as np
import pytest

import tritonlite
from tritonlite import InferenceEngine, InferFuture, InferResult, InvalidArgumentError, NotFoundError, UnavailableError

from model_repos import EXAMPLES


def test_readme_example_add_sub_python_and_onnx() -> None:
    with InferenceEngine(EXAMPLES / "model_repository") as engine:
        a = np.array([1, 2, 3, 4], dtype=np.float32)
        b = np.array([10, 20, 30, 40], dtype=np.float32)
        result = engine.infer("add_sub", {"INPUT0": a, "INPUT1": b})
        assert isinstance(result, InferResult)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
        assert result.as_numpy("OUTPUT0").dtype == np.float32
        assert result.model_name == "add_sub" and result.model_version == "1"

        x = np.arange(32, dtype=np.float32).reshape(2, 16)
        y = np.full((2, 16), 0.5, dtype=np.float32)
        onnx = engine.infer("add_sub_onnx", {"INPUT0": x, "INPUT1": y})
        np.testing.assert_allclose(onnx.as_numpy("OUTPUT0"), x + y)
        np.testing.assert_allclose(onnx.as_numpy("OUTPUT1"), x - y)
        assert onnx.as_numpy("OUTPUT0").shape == (2, 16)


def test_infer_result_fields_and_requested_outputs(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        x = np.ones((1, 16), np.float32)
        res = engine.infer("add_sub_onnx", {"INPUT0": x, "INPUT1": x}, outputs=["OUTPUT1"], request_id="req-7")
        assert set(res.outputs) == {"OUTPUT1"}
        assert res.as_numpy("OUTPUT0") is None
        np.testing.assert_array_equal(res.as_numpy("OUTPUT1"), np.zeros((1, 16), np.float32))
        assert res.id == "req-7"
        assert res.model_name == "add_sub_onnx" and res.model_version == "1"
        assert res.parameters == {}


def test_submit_returns_a_future_that_is_also_awaitable(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        x = np.arange(4, dtype=np.float32)
        fut = engine.submit("identity_py", {"INPUT0": x})
        assert isinstance(fut, concurrent.futures.Future) and isinstance(fut, InferFuture)
        np.testing.assert_array_equal(fut.result(timeout=10).as_numpy("OUTPUT0"), x)

        async def run() -> list[np.ndarray]:
            results = await asyncio.gather(*(engine.submit("identity_py", {"INPUT0": x + i}) for i in range(8)))
            return [r.as_numpy("OUTPUT0") for r in results]

        outs = asyncio.run(run())
        for i, out in enumerate(outs):
            np.testing.assert_array_equal(out, x + i)


def test_submit_errors_arrive_through_the_future(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        fut = engine.submit("nope", {"INPUT0": np.zeros(4, np.float32)})
        with pytest.raises(NotFoundError, match="Request for unknown model: 'nope' is not found"):
            fut.result(timeout=5)

        async def run() -> None:
            await engine.submit("identity_py", {"INPUT0": np.zeros(3, np.float32)})

        with pytest.raises(InvalidArgumentError, match="unexpected shape for input 'INPUT0'"):
            asyncio.run(run())


def test_concurrent_submits_use_every_instance(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        xs = [np.full((1, 16), i, np.float32) for i in range(64)]
        futs = [engine.submit("add_sub_onnx", {"INPUT0": x, "INPUT1": x}) for x in xs]
        for x, f in zip(xs, futs):
            np.testing.assert_array_equal(f.result(timeout=30).as_numpy("OUTPUT0"), 2 * x)
        stats = engine.model_statistics("add_sub_onnx")["model_stats"][0]
        assert stats["inference_count"] == 64 and stats["execution_count"] == 64


def test_close_joins_every_thread(repo: Path, no_thread_leak) -> None:  # type: ignore[no-untyped-def]
    engine = InferenceEngine(repo, model_control_mode="poll", repository_poll_secs=0.1)
    names = no_thread_leak()
    assert any(n == "tritonlite.repository.poll" for n in names)
    assert any(n.startswith("tritonlite.add_sub_onnx.") for n in names)
    engine.close()
    assert no_thread_leak() == []
    assert engine.is_live() is False and engine.is_ready() is False
    with pytest.raises(UnavailableError, match="closed"):
        engine.infer("identity_py", {"INPUT0": np.zeros(4, np.float32)})
    engine.close()  # idempotent


def test_health_and_metadata(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        assert engine.is_live() and engine.is_ready()
        assert engine.is_model_ready("add_sub_onnx") and engine.is_model_ready("add_sub_onnx", "1")
        assert not engine.is_model_ready("add_sub_onnx", "2") and not engine.is_model_ready("missing")
        meta = engine.server_metadata()
        assert meta["name"] == "triton" and meta["version"] == tritonlite.__version__
        assert "model_repository" in meta["extensions"] and "statistics" in meta["extensions"]
        assert engine.model_metadata("add_sub_onnx") == {
            "name": "add_sub_onnx",
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [
                {"name": "INPUT0", "datatype": "FP32", "shape": [-1, 16]},
                {"name": "INPUT1", "datatype": "FP32", "shape": [-1, 16]},
            ],
            "outputs": [
                {"name": "OUTPUT0", "datatype": "FP32", "shape": [-1, 16]},
                {"name": "OUTPUT1", "datatype": "FP32", "shape": [-1, 16]},
            ],
        }
        py = engine.model_metadata("identity_py", "1")
        assert py["platform"] == "python" and py["versions"] == ["1"]
        assert py["inputs"] == [{"name": "INPUT0", "datatype": "FP32", "shape": [4]}]


def test_model_config_is_the_normalised_json_form(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        cfg = engine.model_config("identity_py")
        assert cfg["name"] == "identity_py" and cfg["backend"] == "python"
        assert cfg["default_model_filename"] == "model.py"
        assert cfg["version_policy"] == {"latest": {"num_versions": 1}}
        assert cfg["instance_group"] == [
            {"name": "identity_py", "kind": "KIND_CPU", "count": 1, "gpus": [], "secondary_devices": [], "profile": [],
             "passive": False, "host_policy": ""}
        ]
        assert cfg["input"][0]["dims"] == [4] and isinstance(cfg["input"][0]["dims"][0], int)
        onnx = engine.model_config("add_sub_onnx", "1")
        assert onnx["instance_group"][0]["count"] == 2 and onnx["instance_group"][0]["name"] == "add_sub_onnx_0"
        assert onnx["default_model_filename"] == "model.onnx"


def test_unknown_model_and_version_errors(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        x = {"INPUT0": np.zeros(4, np.float32)}
        with pytest.raises(NotFoundError, match=r"^Request for unknown model: 'ghost' is not found$"):
            engine.infer("ghost", x)
        with pytest.raises(NotFoundError, match=r"^Request for unknown model: 'identity_py' version 9 is not found$"):
            engine.infer("identity_py", x, model_version="9")
        with pytest.raises(InvalidArgumentError, match="failed to get model version from specified version string 'abc'"):
            engine.infer("identity_py", x, model_version="abc")
        with pytest.raises(InvalidArgumentError, match="invalid model version specified '-3' , version should be an integral value > 0"):
            engine.infer("identity_py", x, model_version="-3")
        with pytest.raises(NotFoundError):
            engine.model_metadata("ghost")
        with pytest.raises(LookupError):  # NotFoundError is also a LookupError
            engine.model_config("ghost")
        np.testing.assert_array_equal(engine.infer("identity_py", x).as_numpy("OUTPUT0"), np.zeros(4, np.float32))


def test_cancelled_future_drops_queued_work(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        fut = engine.submit("identity_py", {"INPUT0": np.zeros(4, np.float32)})
        fut.cancel()  # may or may not win the race with the instance thread
        if fut.cancelled():
            assert fut.request is not None and fut.request.is_cancelled()
        else:
            assert fut.result(timeout=5).as_numpy("OUTPUT0").shape == (4,)
        assert engine.infer("identity_py", {"INPUT0": np.ones(4, np.float32)}).as_numpy("OUTPUT0")[0] == 1.0


def test_public_names_are_exported() -> None:
    for name in tritonlite.__all__:
        assert hasattr(tritonlite, name), name
    assert issubclass(tritonlite.InvalidArgumentError, ValueError)
    assert issubclass(tritonlite.NotFoundError, LookupError)
    assert tritonlite.InvalidArgumentError("x").code == tritonlite.ErrorCode.INVALID_ARG == 3


def test_importing_starts_no_thread() -> None:
    import subprocess
    import sys

    code = (
        "import threading, logging, tritonlite;"
        "print(threading.active_count(), len(logging.getLogger().handlers),"
        " 'triton_python_backend_utils' in __import__('sys').modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "0", "False"]
