"""Repository scanning, version policies, control modes, load/unload/poll and model states."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine, InvalidArgumentError, NotFoundError, UnavailableError, InternalError

from model_repos import IDENTITY_PY, add_onnx_model, identity_py_config, write_model

SCALE_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args):
        self.version = int(args["model_version"])

    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0",
                pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy() * np.float32(self.version))]) for r in requests]
"""

X4 = {"INPUT0": np.ones(4, np.float32)}


def _scale_model(root: Path, policy: str = "", versions: tuple[int, ...] = (1, 2, 3)) -> None:
    files = {f"{v}/model.py": SCALE_PY for v in versions}
    write_model(root, "scale", identity_py_config("scale", extra=policy), files)


def _out(engine: InferenceEngine, model: str = "scale", version: str = "") -> float:
    return float(engine.infer(model, X4, model_version=version).as_numpy("OUTPUT0")[0])


def test_version_policy_latest_default(tmp_path: Path) -> None:
    _scale_model(tmp_path)
    (tmp_path / "scale" / "07").mkdir()  # names starting with 0 are not versions
    (tmp_path / "scale" / "notes").mkdir()
    with InferenceEngine(tmp_path) as engine:
        assert _out(engine) == 3.0
        with pytest.raises(NotFoundError, match="'scale' version 1 is not found"):
            engine.infer("scale", X4, model_version="1")
        assert engine.model_metadata("scale")["versions"] == ["3"]


def test_version_policy_latest_n_all_and_specific(tmp_path: Path) -> None:
    _scale_model(tmp_path / "a", "version_policy: { latest: { num_versions: 2 } }")
    _scale_model(tmp_path / "b", "version_policy: { all { } }")
    _scale_model(tmp_path / "c", "version_policy: { specific: { versions: [ 1, 3 ] } }")
    with InferenceEngine(tmp_path / "a") as engine:
        assert [_out(engine, version=v) for v in ("2", "3")] == [2.0, 3.0]
        assert engine.model_metadata("scale")["versions"] == ["2", "3"]
    with InferenceEngine(tmp_path / "b") as engine:
        assert [_out(engine, version=v) for v in ("1", "2", "3", "")] == [1.0, 2.0, 3.0, 3.0]
        stats = engine.model_statistics("scale")["model_stats"]
        assert [s["version"] for s in stats] == ["1", "2", "3"]
        assert engine.model_statistics("scale", "2")["model_stats"][0]["inference_stats"]["success"]["count"] == 1
    with InferenceEngine(tmp_path / "c") as engine:
        assert [_out(engine, version=v) for v in ("1", "3")] == [1.0, 3.0]
        with pytest.raises(NotFoundError):
            engine.infer("scale", X4, model_version="2")


def test_default_model_filename_override(tmp_path: Path) -> None:
    write_model(tmp_path, "custom", identity_py_config("custom", extra='default_model_filename: "my_model.py"'),
                {"1/my_model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path) as engine:
        assert _out(engine, "custom") == 1.0
        assert engine.model_config("custom")["default_model_filename"] == "my_model.py"


def test_several_roots_and_duplicate_names(tmp_path: Path) -> None:
    write_model(tmp_path / "r1", "one", identity_py_config("one"), {"1/model.py": IDENTITY_PY})
    write_model(tmp_path / "r2", "two", identity_py_config("two"), {"1/model.py": IDENTITY_PY})
    write_model(tmp_path / "r1", "dup", identity_py_config("dup"), {"1/model.py": IDENTITY_PY})
    write_model(tmp_path / "r2", "dup", identity_py_config("dup"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine([tmp_path / "r1", str(tmp_path / "r2")]) as engine:
        assert _out(engine, "one") == 1.0 and _out(engine, "two") == 1.0
        index = {e["name"]: e for e in engine.repository_index()}
        assert index["dup"]["state"] == "UNAVAILABLE" and "multiple repositories" in index["dup"]["reason"]
        assert engine.is_ready() is False  # strict readiness: a model failed


def test_broken_models_are_unavailable_and_the_rest_serve(tmp_path: Path) -> None:
    write_model(tmp_path, "good", identity_py_config("good"), {"1/model.py": IDENTITY_PY})
    write_model(tmp_path, "bad_syntax", "name: \"bad_syntax\"\nbackend: \"python\"\nbogus_field: 3\n", {"1/model.py": IDENTITY_PY})
    write_model(tmp_path, "bad_code", identity_py_config("bad_code"), {"1/model.py": "raise RuntimeError('boom at import')\n"})
    write_model(tmp_path, "bad_init", identity_py_config("bad_init"),
                {"1/model.py": "class TritonPythonModel:\n    def initialize(self, args):\n        raise ValueError('no weights')\n"
                              "    def execute(self, requests):\n        return []\n"})
    write_model(tmp_path, "wrong_name", identity_py_config("other_name"), {"1/model.py": IDENTITY_PY})
    write_model(tmp_path, "no_backend", "name: \"no_backend\"\nbackend: \"nonexistent\"\n", {"1/x": "x"})
    with InferenceEngine(tmp_path) as engine:
        assert _out(engine, "good") == 1.0
        index = {e["name"]: e for e in engine.repository_index()}
        assert index["good"] == {"name": "good", "version": "1", "state": "READY"}
        assert 'bogus_field' in index["bad_syntax"]["reason"] and "config.pbtxt" in index["bad_syntax"]["reason"]
        assert "boom at import" in index["bad_code"]["reason"]
        assert "no weights" in index["bad_init"]["reason"]
        assert index["wrong_name"]["reason"] == (
            "unexpected directory name 'wrong_name' for model 'other_name', directory name must equal model name"
        )
        assert "unable to find backend 'nonexistent'" in index["no_backend"]["reason"]
        for name in ("bad_syntax", "bad_code", "bad_init", "wrong_name", "no_backend"):
            assert index[name]["state"] == "UNAVAILABLE"
            with pytest.raises((UnavailableError, NotFoundError)):
                engine.infer(name, X4)
        assert [e["name"] for e in engine.repository_index(ready=True)] == ["good"]
        assert engine.is_ready() is False
        assert _out(engine, "good") == 1.0


def test_none_mode_refuses_load_and_unload(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        for call in (lambda: engine.load_model("identity_py"), lambda: engine.unload_model("identity_py")):
            with pytest.raises(UnavailableError, match="explicit model load / unload is not allowed if polling is enabled"):
                call()


def test_explicit_mode_load_unload_and_index(repo: Path) -> None:
    with InferenceEngine(repo, model_control_mode="explicit", startup_models=["identity_py"]) as engine:
        assert engine.repository_index() == [
            {"name": "add_sub_onnx"},
            {"name": "identity_py", "version": "1", "state": "READY"},
            {"name": "raising_py"},
        ]
        with pytest.raises(NotFoundError):
            engine.infer("raising_py", X4)
        engine.load_model("raising_py")
        assert float(engine.infer("raising_py", X4).as_numpy("OUTPUT0")[0]) == 2.0
        engine.unload_model("raising_py")
        assert {"name": "raising_py", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"} in engine.repository_index()
        with pytest.raises(NotFoundError):
            engine.infer("raising_py", X4)
        assert engine.is_ready() is True  # unloaded on purpose does not count against readiness
        engine.unload_model("never_heard_of")  # no-op, as in Triton
        with pytest.raises(InternalError, match="failed to load 'ghost', failed to poll from model repository"):
            engine.load_model("ghost")


def test_explicit_mode_star_loads_everything(repo: Path) -> None:
    with InferenceEngine(repo, model_control_mode="explicit", startup_models=["*"]) as engine:
        assert {e["name"] for e in engine.repository_index(ready=True)} == {"add_sub_onnx", "identity_py", "raising_py"}
    with pytest.raises(InvalidArgumentError, match="must be the only"):
        InferenceEngine(repo, model_control_mode="explicit", startup_models=["*", "identity_py"])


def test_load_with_config_override_and_failed_reload_keeps_old(repo: Path) -> None:
    with InferenceEngine(repo, model_control_mode="explicit", startup_models=["identity_py"]) as engine:
        override = json.loads(json.dumps(engine.model_config("identity_py")))
        override["max_batch_size"] = 4
        override["input"][0]["dims"] = [-1]
        override["output"][0]["dims"] = [-1]
        engine.load_model("identity_py", config=json.dumps(override))
        assert engine.model_config("identity_py")["max_batch_size"] == 4
        out = engine.infer("identity_py", {"INPUT0": np.ones((2, 5), np.float32)}).as_numpy("OUTPUT0")
        assert out.shape == (2, 5)
        with pytest.raises(InternalError, match="^failed to load 'identity_py', failed to poll from model repository: Invalid config override: "):
            engine.load_model("identity_py", config="{not json")
        with pytest.raises(InvalidArgumentError, match="unexpected directory name 'identity_py' for model 'zzz'"):
            engine.load_model("identity_py", config=json.dumps({"name": "zzz", "backend": "python"}))
        # the model that was serving is untouched by the failed reloads
        assert engine.infer("identity_py", {"INPUT0": np.ones((1, 3), np.float32)}).as_numpy("OUTPUT0").shape == (1, 3)


def test_load_with_files(repo: Path, tmp_path: Path) -> None:
    from model_repos import onnx_models

    onnx_file = onnx_models.add_sub(tmp_path / "scratch" / "model.onnx")
    config = {
        "name": "uploaded",
        "platform": "onnxruntime_onnx",
        "max_batch_size": 8,
        "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [16]}, {"name": "INPUT1", "data_type": "TYPE_FP32", "dims": [16]}],
        "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [16]}],
    }
    with InferenceEngine(repo, model_control_mode="explicit") as engine:
        engine.load_model("uploaded", config=json.dumps(config), files={"file:1/model.onnx": onnx_file.read_bytes()})
        x = np.ones((1, 16), np.float32)
        np.testing.assert_array_equal(engine.infer("uploaded", {"INPUT0": x, "INPUT1": x}).as_numpy("OUTPUT0"), 2 * x)
        with pytest.raises(InternalError, match="^failed to load 'uploaded2', failed to poll from model repository: the model config must be provided along with model files$"):
            engine.load_model("uploaded2", files={"file:1/model.onnx": b"x"})
        with pytest.raises(InternalError, match="^failed to load 'uploaded3', failed to poll from model repository: file path '../evil' escapes the model directory$"):
            engine.load_model("uploaded3", config=json.dumps(config | {"name": "uploaded3"}), files={"file:../evil": b"x"})


def test_poll_mode_adds_changes_and_removes(tmp_path: Path) -> None:
    write_model(tmp_path, "first", identity_py_config("first"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path, model_control_mode="poll", repository_poll_secs=0.1) as engine:
        assert _out(engine, "first") == 1.0
        write_model(tmp_path, "second", identity_py_config("second"), {"1/model.py": IDENTITY_PY})
        _wait(lambda: engine.is_model_ready("second"))
        assert _out(engine, "second") == 1.0
        # a new version appears: latest policy switches to it
        write_model(tmp_path, "first", None, {"2/model.py": SCALE_PY})
        _wait(lambda: engine.is_model_ready("first", "2"))
        assert _out(engine, "first") == 2.0
        # a broken change keeps the old model serving
        (tmp_path / "first" / "config.pbtxt").write_text("this is not pbtxt")
        time.sleep(0.5)
        assert _out(engine, "first") == 2.0
        # removal unloads
        import shutil

        shutil.rmtree(tmp_path / "second")
        _wait(lambda: not engine.is_model_ready("second"))
        with pytest.raises(NotFoundError):
            engine.infer("second", X4)


def _wait(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_strict_model_config_requires_a_complete_config(tmp_path: Path) -> None:
    write_model(tmp_path, "noconfig", None, {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path, strict_model_config=True) as engine:
        reason = engine.repository_index()[0]["reason"]
        assert "config.pbtxt is required" in reason


def test_bad_engine_arguments(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="model_control_mode must be one of"):
        InferenceEngine(tmp_path, model_control_mode="sometimes")
    with pytest.raises(InvalidArgumentError, match="is not a directory"):
        InferenceEngine(tmp_path / "missing")


def test_model_statistics_errors(repo: Path) -> None:
    with InferenceEngine(repo, model_control_mode="explicit", startup_models=["identity_py"]) as engine:
        with pytest.raises(InvalidArgumentError, match="requested model 'raising_py' is not available"):
            engine.model_statistics("raising_py")
        with pytest.raises(InvalidArgumentError, match="requested model version is not available for model 'identity_py'"):
            engine.model_statistics("identity_py", "5")
        assert [s["name"] for s in engine.model_statistics()["model_stats"]] == ["identity_py"]


def test_onnx_multi_version_directory_model(tmp_path: Path) -> None:
    model_dir = add_onnx_model(tmp_path, versions=(1, 2))
    # version 2 stores the model as a directory holding model.onnx
    (model_dir / "2" / "model.onnx").rename(model_dir / "2" / "tmp.onnx")
    (model_dir / "2" / "model.onnx").mkdir()
    (model_dir / "2" / "tmp.onnx").rename(model_dir / "2" / "model.onnx" / "model.onnx")
    with InferenceEngine(tmp_path) as engine:
        x = np.ones((1, 16), np.float32)
        res = engine.infer("add_sub_onnx", {"INPUT0": x, "INPUT1": x})
        assert res.model_version == "2"
        np.testing.assert_array_equal(res.as_numpy("OUTPUT0"), 2 * x)
