"""Request validation with Triton's wording; after every bad request the engine keeps serving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine, InvalidArgumentError

from model_repos import identity_py_config, write_model, IDENTITY_PY

BATCH_NOTE = "NOTE: Setting a non-zero max_batch_size in the model config requires a batch dimension"


@pytest.fixture
def engine(repo: Path):  # type: ignore[no-untyped-def]
    write_model(repo, "var_py", identity_py_config("var_py", dims="[ -1, 3 ]", max_batch=4), {"1/model.py": IDENTITY_PY})
    write_model(
        repo,
        "reshape_py",
        identity_py_config("reshape_py", dims="[ 2, 3 ]", extra="").replace(
            'dims: [ 2, 3 ] }', 'dims: [ 2, 3 ] reshape: { shape: [ 6 ] } }', 1
        ).replace('output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 2, 3 ] }', 'output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 6 ] }'),
        {"1/model.py": IDENTITY_PY},
    )
    write_model(
        repo,
        "optional_py",
        """
        name: "optional_py"
        backend: "python"
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] },
                { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] optional: true } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
        """,
        {"1/model.py": IDENTITY_PY},
    )
    write_model(repo, "bytes_py", identity_py_config("bytes_py", dims="[ -1 ]", dtype="TYPE_STRING"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(repo) as eng:
        yield eng


def _still_serving(engine: InferenceEngine) -> None:
    x = np.ones((1, 16), np.float32)
    np.testing.assert_array_equal(engine.infer("add_sub_onnx", {"INPUT0": x, "INPUT1": x}).as_numpy("OUTPUT0"), 2 * x)


X16 = np.ones((1, 16), np.float32)

CASES = [
    (
        "unknown input",
        "add_sub_onnx",
        {"INPUT0": X16, "EXTRA": X16},
        {},
        "unexpected inference input 'EXTRA' for model 'add_sub_onnx'",  # Triton 2.51: no request id here
    ),
    (
        "one input too many (Triton checks the count before the names)",
        "add_sub_onnx",
        {"INPUT0": X16, "INPUT1": X16, "EXTRA": X16},
        {},
        "[request id: <id_unknown>] expected 2 inputs but got 3 inputs for model 'add_sub_onnx'. Got input(s) "
        "['EXTRA','INPUT1','INPUT0'], but missing required input(s) ]. Please provide all required input(s).",
    ),
    (
        "missing input",
        "add_sub_onnx",
        {"INPUT0": X16},
        {},
        "[request id: <id_unknown>] expected 2 inputs but got 1 inputs for model 'add_sub_onnx'. Got input(s) ['INPUT0'], "
        "but missing required input(s) ['INPUT1']. Please provide all required input(s).",
    ),
    (
        "wrong dtype",
        "add_sub_onnx",
        {"INPUT0": X16.astype(np.int32), "INPUT1": X16},
        {"request_id": "r1"},
        "[request id: r1] inference input 'INPUT0' data-type is 'INT32', but model 'add_sub_onnx' expects 'FP32'",
    ),
    (
        "wrong shape without batch dim",
        "add_sub_onnx",
        {"INPUT0": np.ones(4, np.float32), "INPUT1": np.ones(4, np.float32)},
        {},
        "[request id: <id_unknown>] unexpected shape for input 'INPUT0' for model 'add_sub_onnx'. Expected [-1,16], got [4]. " + BATCH_NOTE,
    ),
    (
        "batch too large",
        "add_sub_onnx",
        {"INPUT0": np.ones((9, 16), np.float32), "INPUT1": np.ones((9, 16), np.float32)},
        {},
        "[request id: <id_unknown>] inference request batch-size must be <= 8 for 'add_sub_onnx'",
    ),
    (
        "batch mismatch",
        "add_sub_onnx",
        {"INPUT0": np.ones((2, 16), np.float32), "INPUT1": np.ones((3, 16), np.float32)},
        {},
        "[request id: <id_unknown>] input 'INPUT1' batch size does not match other inputs for 'add_sub_onnx'",
    ),
    (
        "unknown output",
        "add_sub_onnx",
        {"INPUT0": X16, "INPUT1": X16},
        {"outputs": ["OUTPUT9"]},
        "unexpected inference output 'OUTPUT9' for model 'add_sub_onnx'",
    ),
    (
        "non-batching shape",
        "identity_py",
        {"INPUT0": np.ones((1, 4), np.float32)},
        {},
        "[request id: <id_unknown>] unexpected shape for input 'INPUT0' for model 'identity_py'. Expected [4], got [1,4]. ",
    ),
    (
        "variable dim mismatch on fixed part",
        "var_py",
        {"INPUT0": np.ones((1, 5, 4), np.float32)},
        {},
        "[request id: <id_unknown>] unexpected shape for input 'INPUT0' for model 'var_py'. Expected [-1,-1,3], got [1,5,4]. " + BATCH_NOTE,
    ),
    (
        "scalar for a batching model",
        "var_py",
        {"INPUT0": np.float32(1.0)},
        {},
        "[request id: <id_unknown>] input 'INPUT0' has no shape but model requires batch dimension for 'var_py'",
    ),
    (
        "a list instead of a numpy array",
        "identity_py",
        {"INPUT0": [1.0, 2.0, 3.0, 4.0]},
        {},
        "[request id: <id_unknown>] inference input 'INPUT0' must be a numpy array, got list: "
        "model 'identity_py' expects 'FP32' (np.asarray(value, dtype=np.float32))",
    ),
    (
        "a Python number instead of a numpy array",
        "var_py",
        {"INPUT0": 3},
        {"request_id": "r2"},
        "[request id: r2] inference input 'INPUT0' must be a numpy array, got int: "
        "model 'var_py' expects 'FP32' (np.asarray(value, dtype=np.float32))",
    ),
    (
        "a list of str for a BYTES input",
        "bytes_py",
        {"INPUT0": ["a", "b"]},
        {},
        "[request id: <id_unknown>] inference input 'INPUT0' must be a numpy array, got list: "
        "model 'bytes_py' expects 'BYTES' (np.asarray(value, dtype=np.object_))",
    ),
    (
        "float64 array for an FP32 input",
        "identity_py",
        {"INPUT0": np.arange(4, dtype=np.float64)},
        {},
        "[request id: <id_unknown>] inference input 'INPUT0' data-type is 'FP64', but model 'identity_py' expects 'FP32'",
    ),
    (
        "numbers for a BYTES input",
        "bytes_py",
        {"INPUT0": np.ones(2, np.float32)},
        {},
        "[request id: <id_unknown>] inference input 'INPUT0' data-type is 'FP32', but model 'bytes_py' expects 'BYTES'",
    ),
]


@pytest.mark.parametrize("label,model,inputs,options,message", CASES, ids=[c[0] for c in CASES])
def test_bad_request_is_rejected_with_tritons_message(engine, label, model, inputs, options, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgumentError) as info:
        engine.infer(model, inputs, **options)
    assert str(info.value).startswith(message)
    assert info.value.code == 3
    _still_serving(engine)


def test_failed_validation_counts_as_a_failure_in_statistics(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgumentError):
        engine.infer("add_sub_onnx", {"INPUT0": X16})
    _still_serving(engine)
    stats = engine.model_statistics("add_sub_onnx")["model_stats"][0]["inference_stats"]
    assert stats["fail"]["count"] == 1 and stats["success"]["count"] == 1


def test_variable_dims_accept_any_size(engine) -> None:  # type: ignore[no-untyped-def]
    for n in (1, 7):
        x = np.arange(n * 2 * 3, dtype=np.float32).reshape(2, n, 3)
        np.testing.assert_array_equal(engine.infer("var_py", {"INPUT0": x}).as_numpy("OUTPUT0"), x)


def test_reshape_changes_what_the_backend_sees(engine) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = engine.infer("reshape_py", {"INPUT0": x}).as_numpy("OUTPUT0")
    assert out.shape == (6,)
    np.testing.assert_array_equal(out, x.reshape(6))


def test_optional_input_may_be_omitted(engine) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(engine.infer("optional_py", {"INPUT0": x}).as_numpy("OUTPUT0"), x)
    np.testing.assert_array_equal(engine.infer("optional_py", {"INPUT0": x, "INPUT1": x}).as_numpy("OUTPUT0"), x)
    with pytest.raises(InvalidArgumentError, match=r"expected number of inputs between 1 and 2 but got 1 inputs for model 'optional_py'.*missing required input\(s\) \['INPUT0'\]"):
        engine.infer("optional_py", {"INPUT1": x})


def test_bytes_tensors_accept_str_and_bytes(engine) -> None:  # type: ignore[no-untyped-def]
    out = engine.infer("bytes_py", {"INPUT0": np.array(["héllo", b"\x00raw"], dtype=object)}).as_numpy("OUTPUT0")
    assert out.dtype == object and list(out) == ["héllo".encode(), b"\x00raw"]
    out = engine.infer("bytes_py", {"INPUT0": np.array([b"a", b"bc"])}).as_numpy("OUTPUT0")
    assert list(out) == [b"a", b"bc"]
