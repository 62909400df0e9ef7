"""Ensembles end to end: real ONNX and model.py composing models, load-time graph checks, dependencies.

Concurrency is proven without timing: the two independent Python steps of the DAG both wait on one
``threading.Barrier(2)`` kept in a module they import. Run one after the other, the barrier would
time out and the request would fail.
"""

from __future__ import annotations

import concurrent.futures
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine, InvalidArgumentError, NotFoundError, UnavailableError
from tritonlite.errors import TritonLiteError

from model_repos import IDENTITY_PY, RAISING_PY, add_onnx_model, identity_py_config, write_model

#: a Python model computing ``OUTPUT0 = {expr}`` of ``x = INPUT0``, after ``{wait}`` on the shared module
STEP_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils
import {module} as sync


class TritonPythonModel:
    def execute(self, requests):
        {wait}
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", np.asarray({expr}, dtype=x.dtype))]))
        return out
"""

SYNC_MODULE = """
import threading

BARRIER = threading.Barrier(2, timeout=10)
GATE = threading.Event()
"""

F16 = 'data_type: TYPE_FP32 dims: [ 16 ]'
F4 = 'data_type: TYPE_FP32 dims: [ 4 ]'


@pytest.fixture
def sync_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A fresh module (unique name) holding the barrier and gate the test's Python models share."""
    name = f"ens_sync_{uuid.uuid4().hex}"
    folder = tmp_path / "sync"
    folder.mkdir()
    (folder / f"{name}.py").write_text(SYNC_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    yield name
    sys.modules.pop(name, None)


def _step_model(root: Path, name: str, module: str, expr: str, wait: str = "pass", dims: str = "[ 16 ]", max_batch: int = 8) -> None:
    code = STEP_PY.format(module=module, expr=expr, wait=wait)
    write_model(root, name, identity_py_config(name, dims=dims, max_batch=max_batch), {"1/model.py": code})


def _ensemble(root: Path, name: str, body: str, max_batch: int = 0) -> None:
    write_model(root, name, f'name: "{name}"\nplatform: "ensemble"\nmax_batch_size: {max_batch}\n{body}', {"1/.keep": ""})


def _step(model: str, inputs: dict[str, str], outputs: dict[str, str], version: int = -1) -> str:
    ins = " ".join(f'input_map {{ key: "{k}" value: "{v}" }}' for k, v in inputs.items())
    outs = " ".join(f'output_map {{ key: "{k}" value: "{v}" }}' for k, v in outputs.items())
    return f'{{ model_name: "{model}" model_version: {version} {ins} {outs} }}'


def _io(inputs: dict[str, str], outputs: dict[str, str], steps: list[str]) -> str:
    ins = ", ".join(f'{{ name: "{n}" {spec} }}' for n, spec in inputs.items())
    outs = ", ".join(f'{{ name: "{n}" {spec} }}' for n, spec in outputs.items())
    return f"input [ {ins} ]\noutput [ {outs} ]\nensemble_scheduling {{ step [ {', '.join(steps)} ] }}\n"


def _dag_repo(root: Path, module: str) -> Path:
    """ONNX add_sub, then two independent Python steps that meet at the barrier.

    SUM_X2 = (A + B) * 2, NEG_DIFF = -(A - B), DIFF = A - B. The steps are listed out of order.
    """
    add_onnx_model(root)
    _step_model(root, "double_py", module, "x * 2", wait="sync.BARRIER.wait()")
    _step_model(root, "negate_py", module, "-x", wait="sync.BARRIER.wait()")
    _ensemble(
        root,
        "ens_dag",
        _io(
            {"A": F16, "B": F16},
            {"SUM_X2": F16, "NEG_DIFF": F16, "DIFF": F16},
            [
                _step("double_py", {"INPUT0": "sum"}, {"OUTPUT0": "SUM_X2"}),
                _step("negate_py", {"INPUT0": "DIFF"}, {"OUTPUT0": "NEG_DIFF"}),
                _step("add_sub_onnx", {"INPUT0": "A", "INPUT1": "B"}, {"OUTPUT0": "sum", "OUTPUT1": "DIFF"}),
            ],
        ),
        max_batch=8,
    )
    return root


def _ab(batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
    a = np.arange(16 * batch, dtype=np.float32).reshape(batch, 16)
    b = np.full((batch, 16), 0.5, dtype=np.float32) + np.arange(batch, dtype=np.float32)[:, None]
    return a, b


def _stats(engine: InferenceEngine, model: str) -> dict:
    return engine.model_statistics(model)["model_stats"][0]


def _reason(engine: InferenceEngine, model: str) -> str:
    entries = [e for e in engine.repository_index() if e["name"] == model]
    assert entries and all(e["state"] == "UNAVAILABLE" for e in entries), entries
    return entries[0].get("reason", "")


# ---- running ---------------------------------------------------------------------------------------


def test_dag_runs_independent_steps_concurrently_with_exact_values(tmp_path: Path, sync_module: str) -> None:
    with InferenceEngine(_dag_repo(tmp_path / "models", sync_module)) as engine:
        a, b = _ab()
        res = engine.infer("ens_dag", {"A": a, "B": b}, request_id="r1")
        np.testing.assert_array_equal(res.as_numpy("SUM_X2"), (a + b) * 2)
        np.testing.assert_array_equal(res.as_numpy("NEG_DIFF"), -(a - b))
        np.testing.assert_array_equal(res.as_numpy("DIFF"), a - b)
        assert set(res.outputs) == {"SUM_X2", "NEG_DIFF", "DIFF"}
        assert res.model_name == "ens_dag" and res.model_version == "1" and res.id == "r1"

        # several requests in flight at once: every barrier pair still meets
        futures = [engine.submit("ens_dag", dict(zip("AB", _ab()))) for _ in range(6)]
        for fut in futures:
            np.testing.assert_array_equal(fut.result(timeout=30).as_numpy("DIFF"), a - b)


def test_requested_output_subset_runs_only_the_needed_steps(tmp_path: Path, sync_module: str) -> None:
    with InferenceEngine(_dag_repo(tmp_path / "models", sync_module)) as engine:
        a, b = _ab()
        res = engine.infer("ens_dag", {"A": a, "B": b}, outputs=["NEG_DIFF", "SUM_X2"])
        assert set(res.outputs) == {"NEG_DIFF", "SUM_X2"}
        assert res.as_numpy("DIFF") is None
        np.testing.assert_array_equal(res.as_numpy("NEG_DIFF"), b - a)

        only = engine.infer("ens_dag", {"A": a, "B": b}, outputs=["DIFF"])
        assert set(only.outputs) == {"DIFF"}
        np.testing.assert_array_equal(only.as_numpy("DIFF"), a - b)
        # the Python steps are not needed for DIFF (had one run alone, its barrier would have failed it)
        assert _stats(engine, "double_py")["execution_count"] == 1
        assert _stats(engine, "negate_py")["execution_count"] == 1
        assert _stats(engine, "add_sub_onnx")["execution_count"] == 2

        with pytest.raises(InvalidArgumentError, match="unexpected inference output 'sum' for model 'ens_dag'"):
            engine.infer("ens_dag", {"A": a, "B": b}, outputs=["sum"])


def test_statistics_of_ensemble_and_composing_models(tmp_path: Path, sync_module: str) -> None:
    with InferenceEngine(_dag_repo(tmp_path / "models", sync_module)) as engine:
        for _ in range(3):
            engine.infer("ens_dag", dict(zip("AB", _ab())))
        engine.infer("ens_dag", dict(zip("AB", _ab(2))))
        for model in ("add_sub_onnx", "double_py", "negate_py"):
            s = _stats(engine, model)
            assert s["inference_count"] == 5 and s["execution_count"] == 4, model
            assert s["inference_stats"]["success"]["count"] == 4
        ens = _stats(engine, "ens_dag")
        assert ens["inference_count"] == 5 and ens["execution_count"] == 4
        assert ens["inference_stats"]["success"]["count"] == 4
        assert ens["inference_stats"]["queue"]["count"] == 4
        assert ens["inference_stats"]["compute_infer"]["count"] == 4
        assert ens["inference_stats"]["compute_infer"]["ns"] > 0
        assert ens["inference_stats"]["fail"]["count"] == 0
        assert {b["batch_size"]: b["compute_infer"]["count"] for b in ens["batch_stats"]} == {1: 3, 2: 1}
        assert ens["last_inference"] > 0


def test_step_error_fails_the_request_with_that_steps_message(repo: Path) -> None:
    _ensemble(
        repo,
        "ens_err",
        _io({"IN": F4}, {"OUT": F4}, [
            _step("identity_py", {"INPUT0": "IN"}, {"OUTPUT0": "mid"}),
            _step("raising_py", {"INPUT0": "mid"}, {"OUTPUT0": "OUT"}),
        ]),
    )
    with InferenceEngine(repo) as engine:
        bad = np.full(4, -1, np.float32)
        with pytest.raises(TritonLiteError) as direct:
            engine.infer("raising_py", {"INPUT0": bad})
        with pytest.raises(TritonLiteError) as via_ensemble:
            engine.infer("ens_err", {"IN": bad})
        assert type(via_ensemble.value) is type(direct.value)
        assert str(via_ensemble.value) == str(direct.value)
        assert "negative input is not allowed" in str(via_ensemble.value)
        assert _stats(engine, "ens_err")["inference_stats"]["fail"]["count"] == 1

        # the engine keeps serving, through the ensemble too
        good = np.arange(4, dtype=np.float32)
        np.testing.assert_array_equal(engine.infer("ens_err", {"IN": good}).as_numpy("OUT"), good * 2)
        ens = _stats(engine, "ens_err")
        assert ens["inference_stats"]["success"]["count"] == 1 and ens["execution_count"] == 1


def test_batched_composing_models_with_batch_over_one(tmp_path: Path, sync_module: str) -> None:
    root = tmp_path / "models"
    add_onnx_model(root)
    _step_model(root, "triple_py", sync_module, "x * 3")
    _ensemble(
        root,
        "ens_batch",
        _io({"A": F16, "B": F16}, {"OUT": F16, "DIFF": F16}, [
            _step("add_sub_onnx", {"INPUT0": "A", "INPUT1": "B"}, {"OUTPUT0": "sum", "OUTPUT1": "DIFF"}),
            _step("triple_py", {"INPUT0": "sum"}, {"OUTPUT0": "OUT"}),
        ]),
        max_batch=4,
    )
    with InferenceEngine(root) as engine:
        a, b = _ab(3)
        res = engine.infer("ens_batch", {"A": a, "B": b})
        assert res.as_numpy("OUT").shape == (3, 16)
        np.testing.assert_array_equal(res.as_numpy("OUT"), (a + b) * 3)
        np.testing.assert_array_equal(res.as_numpy("DIFF"), a - b)
        futures = [engine.submit("ens_batch", dict(zip("AB", _ab(n)))) for n in (1, 2, 4)]
        for n, fut in zip((1, 2, 4), futures):
            a, b = _ab(n)
            np.testing.assert_array_equal(fut.result(timeout=30).as_numpy("OUT"), (a + b) * 3)
        for model in ("add_sub_onnx", "triple_py", "ens_batch"):
            s = _stats(engine, model)
            assert s["inference_count"] == 3 + 1 + 2 + 4 and s["execution_count"] == 4, model
        assert {b["batch_size"] for b in _stats(engine, "ens_batch")["batch_stats"]} == {1, 2, 3, 4}
        with pytest.raises(InvalidArgumentError, match="batch-size must be <= 4 for 'ens_batch'"):
            engine.infer("ens_batch", dict(zip("AB", _ab(5))))


def test_non_batching_ensemble_over_a_batching_model(tmp_path: Path) -> None:
    """Triton's ReshapeTensorDims: [16] gains a batch dim of 1 for add_sub_onnx and loses it again."""
    root = tmp_path / "models"
    add_onnx_model(root)
    _ensemble(
        root,
        "ens_flat",
        _io({"A": F16, "B": F16}, {"SUM": F16}, [
            _step("add_sub_onnx", {"INPUT0": "A", "INPUT1": "B"}, {"OUTPUT0": "SUM"}),
        ]),
    )
    with InferenceEngine(root) as engine:
        a, b = np.arange(16, dtype=np.float32), np.ones(16, np.float32)
        res = engine.infer("ens_flat", {"A": a, "B": b})
        assert res.as_numpy("SUM").shape == (16,)
        np.testing.assert_array_equal(res.as_numpy("SUM"), a + b)
        meta = engine.model_metadata("ens_flat")
        assert meta["platform"] == "ensemble"
        assert meta["inputs"][0]["shape"] == [16]
        cfg = engine.model_config("ens_flat")
        assert cfg["platform"] == "ensemble"
        assert not cfg.get("instance_group")
        assert [s["model_name"] for s in cfg["ensemble_scheduling"]["step"]] == ["add_sub_onnx"]


def test_cancelled_request_starts_no_further_step(tmp_path: Path, sync_module: str) -> None:
    root = tmp_path / "models"
    _step_model(root, "gated_py", sync_module, "x + 1", wait="sync.GATE.wait(10)", dims="[ 4 ]", max_batch=0)
    _step_model(root, "after_py", sync_module, "x * 10", dims="[ 4 ]", max_batch=0)
    _ensemble(
        root,
        "ens_gate",
        _io({"IN": F4}, {"OUT": F4}, [
            _step("gated_py", {"INPUT0": "IN"}, {"OUTPUT0": "mid"}),
            _step("after_py", {"INPUT0": "mid"}, {"OUTPUT0": "OUT"}),
        ]),
    )
    with InferenceEngine(root) as engine:
        fut = engine.submit("ens_gate", {"IN": np.zeros(4, np.float32)})
        assert fut.cancel()
        sys.modules[sync_module].GATE.set()
        assert fut.cancelled()
        # the gated step finishes; the ensemble then fails as cancelled and never starts after_py
        ok = engine.infer("ens_gate", {"IN": np.zeros(4, np.float32)})
        np.testing.assert_array_equal(ok.as_numpy("OUT"), np.full(4, 10, np.float32))
        # the cancellation reaches the gated step too: dropped if still queued, else it runs to the gate
        assert _stats(engine, "gated_py")["execution_count"] in (1, 2)
        assert _stats(engine, "after_py")["execution_count"] == 1
        assert _stats(engine, "ens_gate")["execution_count"] == 1


# ---- load-time checks ------------------------------------------------------------------------------


def _bad_repo(root: Path) -> Path:
    add_onnx_model(root)
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    one = {"IN": F4}
    _ensemble(root, "ens_missing", _io(one, {"OUT": F4}, [_step("no_such_model", {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})]))
    _ensemble(root, "ens_cycle", _io(one, {"OUT": F4}, [
        _step("identity_py", {"INPUT0": "t_b"}, {"OUTPUT0": "t_a"}),
        _step("identity_py", {"INPUT0": "t_a"}, {"OUTPUT0": "t_b"}),
    ]))
    _ensemble(root, "ens_twice", _io(one, {"X": F4}, [
        _step("identity_py", {"INPUT0": "IN"}, {"OUTPUT0": "X"}),
        _step("identity_py", {"INPUT0": "IN"}, {"OUTPUT0": "X"}),
    ]))
    _ensemble(root, "ens_unwritten", _io(one, {"OUT": F4, "EXTRA": F4}, [
        _step("identity_py", {"INPUT0": "IN"}, {"OUTPUT0": "OUT"}),
    ]))
    _ensemble(root, "ens_unproduced", _io(one, {"OUT": F4}, [
        _step("identity_py", {"INPUT0": "ghost"}, {"OUTPUT0": "OUT"}),
    ]))
    _ensemble(root, "ens_bad_input", _io(one, {"OUT": F4}, [
        _step("identity_py", {"NOPE": "IN"}, {"OUTPUT0": "OUT"}),
    ]))
    _ensemble(root, "ens_bad_output", _io(one, {"OUT": F4}, [
        _step("identity_py", {"INPUT0": "IN"}, {"NOPE": "OUT"}),
    ]))
    _ensemble(root, "ens_dtype", _io({"IN": "data_type: TYPE_INT32 dims: [ 4 ]"}, {"OUT": F4}, [
        _step("identity_py", {"INPUT0": "IN"}, {"OUTPUT0": "OUT"}),
    ]))
    _ensemble(root, "ens_shape", _io({"IN": "data_type: TYPE_FP32 dims: [ 5 ]"}, {"OUT": F4}, [
        _step("identity_py", {"INPUT0": "IN"}, {"OUTPUT0": "OUT"}),
    ]))
    _ensemble(root, "ens_too_big", _io({"A": F16, "B": F16}, {"S": F16}, [
        _step("add_sub_onnx", {"INPUT0": "A", "INPUT1": "B"}, {"OUTPUT0": "S"}),
    ]), max_batch=16)
    _ensemble(root, "ens_unused", _io(one, {"OUT": F4}, [
        _step("add_sub_onnx", {"INPUT0": "IN", "INPUT1": "IN"}, {"OUTPUT0": "OUT", "OUTPUT1": "spare"}),
    ]))
    _ensemble(root, "ens_x", _io(one, {"OUT": F4}, [_step("ens_y", {"IN": "IN"}, {"OUT": "OUT"})]))
    _ensemble(root, "ens_y", _io(one, {"OUT": F4}, [_step("ens_x", {"IN": "IN"}, {"OUT": "OUT"})]))
    _ensemble(root, "ens_ok", _io(one, {"OUT": F4}, [_step("identity_py", {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})]))
    return root


EXPECTED_LOAD_ERRORS = {
    "ens_missing": "ensemble ens_missing contains models that are not available: no_such_model",
    "ens_cycle": (
        "ensemble 'ens_cycle' has a cycle in its steps: step 0 (model 'identity_py') needs 't_b' from "
        "step 1 (model 'identity_py'), step 1 (model 'identity_py') needs 't_a' from step 0 (model 'identity_py')"
    ),
    "ens_twice": "ensemble tensor 'X' can appear in an output map only once for ensemble 'ens_twice' step 1",
    "ens_unwritten": "output 'EXTRA' for ensemble 'ens_unwritten' is not written by any step",
    "ens_unproduced": "reads ensemble tensor 'ghost' (for its input 'INPUT0'), which is neither an ensemble input nor an output of any step",
    "ens_bad_input": "in ensemble ens_bad_input, ensemble tensor IN is mapping to non-existing input NOPE in model identity_py",
    "ens_bad_output": "in ensemble ens_bad_output, ensemble tensor OUT is mapped from non-existing output NOPE in model identity_py",
    "ens_dtype": "ensemble tensor IN: inconsistent data type: TYPE_INT32 is inferred from model ens_dtype while TYPE_FP32",
    "ens_shape": "ensemble tensor IN: inconsistent shape: [5] is inferred from model ens_shape while [4]",
    "ens_too_big": "ensemble ens_too_big allows maximum batch size 16, but it contains model add_sub_onnx which only allows maximum batch size to be 8",
    "ens_unused": "ensemble tensor 'spare' is unused in ensemble 'ens_unused'",
    "ens_x": "circular dependency between ensembles: ens_x -> ens_y -> ens_x",
    "ens_y": "circular dependency between ensembles: ens_y -> ens_x -> ens_y",
}


def test_bad_ensembles_are_rejected_at_load_with_clear_reasons(tmp_path: Path) -> None:
    with InferenceEngine(_bad_repo(tmp_path / "models")) as engine:
        for model, message in EXPECTED_LOAD_ERRORS.items():
            assert message in _reason(engine, model), model
            assert not engine.is_model_ready(model)
        # the good ones are untouched
        assert engine.is_model_ready("ens_ok") and engine.is_model_ready("identity_py")
        x = np.arange(4, dtype=np.float32)
        np.testing.assert_array_equal(engine.infer("ens_ok", {"IN": x}).as_numpy("OUT"), x)


def test_explicit_load_of_a_bad_ensemble_raises_its_reason(tmp_path: Path) -> None:
    root = _bad_repo(tmp_path / "models")
    with InferenceEngine(root, model_control_mode="explicit") as engine:
        for model in ("ens_missing", "ens_cycle", "ens_twice", "ens_unwritten", "ens_bad_input", "ens_x"):
            with pytest.raises(InvalidArgumentError) as info:
                engine.load_model(model)
            assert EXPECTED_LOAD_ERRORS[model] in str(info.value)
            assert EXPECTED_LOAD_ERRORS[model] in _reason(engine, model)
        with pytest.raises(NotFoundError, match="'ens_cycle' has no available versions"):
            engine.infer("ens_cycle", {"IN": np.zeros(4, np.float32)})


def test_step_on_a_failing_composing_model_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "broken_py", identity_py_config("broken_py"), {"1/model.py": "raise ImportError('no such lib')\n"})
    _ensemble(root, "ens_broken", _io({"IN": F4}, {"OUT": F4}, [_step("broken_py", {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})]))
    with InferenceEngine(root) as engine:
        reason = _reason(engine, "ens_broken")
        assert "ensemble 'ens_broken' depends on 'broken_py' which is not valid" in reason
        assert "no such lib" in reason


def test_specific_step_version_must_be_loaded(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    _ensemble(root, "ens_v2", _io({"IN": F4}, {"OUT": F4}, [_step("identity_py", {"INPUT0": "IN"}, {"OUTPUT0": "OUT"}, version=2)]))
    with InferenceEngine(root) as engine:
        assert "ensemble 'ens_v2' depends on 'identity_py' whose required version 2 is not loaded" in _reason(engine, "ens_v2")


# ---- dependencies in explicit mode -----------------------------------------------------------------


def _pair_repo(root: Path) -> Path:
    write_model(root, "first_py", identity_py_config("first_py"), {"1/model.py": IDENTITY_PY})
    write_model(root, "second_py", identity_py_config("second_py"), {"1/model.py": RAISING_PY})
    _ensemble(root, "ens_pair", _io({"IN": F4}, {"OUT": F4}, [
        _step("first_py", {"INPUT0": "IN"}, {"OUTPUT0": "mid"}),
        _step("second_py", {"INPUT0": "mid"}, {"OUTPUT0": "OUT"}),
    ]))
    return root


def test_explicit_mode_loads_dependencies_and_unload_dependents(tmp_path: Path) -> None:
    x = np.arange(4, dtype=np.float32)
    with InferenceEngine(_pair_repo(tmp_path / "models"), model_control_mode="explicit") as engine:
        assert not engine.is_model_ready("first_py")
        engine.load_model("ens_pair")
        assert engine.is_model_ready("ens_pair")
        assert engine.is_model_ready("first_py") and engine.is_model_ready("second_py")
        np.testing.assert_array_equal(engine.infer("ens_pair", {"IN": x}).as_numpy("OUT"), x * 2)

        engine.unload_model("ens_pair")  # unload_dependents=False keeps the composing models
        assert not engine.is_model_ready("ens_pair")
        assert engine.is_model_ready("first_py") and engine.is_model_ready("second_py")

        engine.load_model("ens_pair")
        engine.unload_model("ens_pair", unload_dependents=True)
        for model in ("ens_pair", "first_py", "second_py"):
            assert not engine.is_model_ready(model)
            assert _reason(engine, model) == "unloaded"

        # a composing model loaded at the user's request stays
        engine.load_model("first_py")
        engine.load_model("ens_pair")
        engine.unload_model("ens_pair", unload_dependents=True)
        assert engine.is_model_ready("first_py")
        assert not engine.is_model_ready("second_py")


def test_unload_dependents_keeps_models_another_ensemble_uses(tmp_path: Path) -> None:
    root = _pair_repo(tmp_path / "models")
    _ensemble(root, "ens_solo", _io({"IN": F4}, {"OUT": F4}, [_step("first_py", {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})]))
    with InferenceEngine(root, model_control_mode="explicit", startup_models=["ens_pair", "ens_solo"]) as engine:
        assert all(engine.is_model_ready(m) for m in ("ens_pair", "ens_solo", "first_py", "second_py"))
        engine.unload_model("ens_pair", unload_dependents=True)
        assert engine.is_model_ready("first_py") and not engine.is_model_ready("second_py")
        engine.unload_model("ens_solo", unload_dependents=True)
        assert not engine.is_model_ready("first_py")


def test_unloading_an_ensemble_finishes_requests_in_flight(tmp_path: Path, sync_module: str) -> None:
    root = tmp_path / "models"
    _step_model(root, "gated_py", sync_module, "x + 1", wait="sync.GATE.wait(10)", dims="[ 4 ]", max_batch=0)
    _ensemble(root, "ens_gate", _io({"IN": F4}, {"OUT": F4}, [_step("gated_py", {"INPUT0": "IN"}, {"OUTPUT0": "OUT"})]))
    with InferenceEngine(root, model_control_mode="explicit", startup_models=["ens_gate"]) as engine:
        fut = engine.submit("ens_gate", {"IN": np.zeros(4, np.float32)})
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            unloading = pool.submit(engine.unload_model, "ens_gate")
            sys.modules[sync_module].GATE.set()
            unloading.result(timeout=30)
        np.testing.assert_array_equal(fut.result(timeout=30).as_numpy("OUT"), np.ones(4, np.float32))
        with pytest.raises((NotFoundError, UnavailableError)):
            engine.infer("ens_gate", {"IN": np.zeros(4, np.float32)})
        assert engine.is_model_ready("gated_py")


def test_parallel_startup_loads_ensembles_and_their_models(tmp_path: Path, sync_module: str) -> None:
    """In none mode every model loads at once; an ensemble waits for its composing models."""
    root = _dag_repo(tmp_path / "models", sync_module)
    for i in range(4):
        _ensemble(root, f"ens_dup{i}", _io({"A": F16, "B": F16}, {"S": F16}, [
            _step("add_sub_onnx", {"INPUT0": "A", "INPUT1": "B"}, {"OUTPUT0": "S"}),
        ]), max_batch=8)
    with InferenceEngine(root, model_load_thread_count=8) as engine:
        assert engine.is_ready()
        a, b = _ab()
        for i in range(4):
            np.testing.assert_array_equal(engine.infer(f"ens_dup{i}", {"A": a, "B": b}).as_numpy("S"), a + b)
