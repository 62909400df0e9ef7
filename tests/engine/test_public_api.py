"""What a Python user meets: help() shows only the public API, misuse gets a clear error naming the call."""

from __future__ import annotations

import inspect
import pydoc
from pathlib import Path

import numpy as np
import pytest

import tritonlite
from tritonlite import InferenceEngine, InferOptions

PUBLIC_METHODS = {
    "infer", "submit", "stream_infer", "close",
    "is_live", "is_ready", "is_model_ready", "server_metadata", "model_metadata", "model_config",
    "repository_index", "load_model", "unload_model", "model_statistics",
    "metrics", "trace_settings", "update_trace_settings",
}
OPTIONS = "outputs, model_version, request_id, parameters, priority, timeout_us, sequence_id, sequence_start, sequence_end"
ERRORS = ["UnknownError", "InternalError", "NotFoundError", "InvalidArgumentError", "UnavailableError",
          "UnsupportedError", "AlreadyExistsError", "CancelledError"]


def test_help_shows_the_public_methods_and_nothing_internal() -> None:
    text = pydoc.render_doc(InferenceEngine, renderer=pydoc.plaintext)
    for internal in ("submit_request", "submit_with_callback", "submit_unary", "submit_stream", "loaded_version",
                     "_inline", "build_request", "_serving"):
        assert internal not in text, internal
    shown = {name for name, member in inspect.getmembers(InferenceEngine, inspect.isfunction) if not name.startswith("_")}
    assert shown == PUBLIC_METHODS
    for name in PUBLIC_METHODS | {"metrics_enabled"}:
        doc = inspect.getdoc(getattr(InferenceEngine, name))
        assert doc and len(doc) > 20, f"{name} has no docstring"
    assert str(inspect.signature(InferenceEngine.infer)) == (
        "(self, model_name: 'str', inputs: 'Mapping[str, np.ndarray]', **options: 'Unpack[InferOptions]') -> 'InferResult'"
    )
    assert tuple(InferOptions.__annotations__) == tuple(OPTIONS.split(", "))


def test_each_error_class_has_its_own_docstring_and_is_exported() -> None:
    root = tritonlite.TritonLiteError.__doc__
    docs = set()
    for code, name in enumerate(ERRORS):
        cls = getattr(tritonlite, name)
        assert name in tritonlite.__all__
        assert cls.__doc__ and cls.__doc__ != root, name
        assert cls("x").code == code and issubclass(cls, tritonlite.TritonLiteError)
        docs.add(cls.__doc__)
    assert len(docs) == 8


@pytest.mark.parametrize("call", ["infer", "submit", "stream_infer"])
def test_inputs_that_are_not_a_mapping_raise_type_error_naming_the_call(repo: Path, call: str) -> None:
    with InferenceEngine(repo) as engine:
        method = getattr(engine, call)
        with pytest.raises(TypeError) as info:
            method("identity_py", [np.zeros(4, np.float32)])
        assert str(info.value) == (
            f"{call}() inputs must be a mapping of input name to numpy array, e.g. {{'INPUT0': np.array(...)}}, got list"
        )
        with pytest.raises(TypeError, match=rf"^{call}\(\) model_name must be a str, got int$"):
            method(3, {"INPUT0": np.zeros(4, np.float32)})
        assert engine.infer("identity_py", {"INPUT0": np.ones(4, np.float32)}).as_numpy("OUTPUT0").tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("call", ["infer", "submit", "stream_infer"])
def test_an_unknown_option_raises_type_error_listing_the_options(repo: Path, call: str) -> None:
    x = {"INPUT0": np.zeros(4, np.float32)}
    with InferenceEngine(repo) as engine:
        method = getattr(engine, call)
        with pytest.raises(TypeError) as info:
            method("identity_py", x, sequence_ID=3)
        assert str(info.value) == (
            f"{call}() got an unexpected keyword argument 'sequence_ID'; did you mean 'sequence_id'? Accepted options: {OPTIONS}"
        )
        with pytest.raises(TypeError) as info:
            method("identity_py", x, batch=True)
        assert str(info.value) == f"{call}() got an unexpected keyword argument 'batch' Accepted options: {OPTIONS}"
        with pytest.raises(TypeError, match=rf"^{call}\(\) outputs must be a list of output names, got a single str 'OUTPUT0'$"):
            method("identity_py", x, outputs="OUTPUT0")
        with pytest.raises(TypeError, match=rf"^{call}\(\) parameters must be a mapping of name to value, got list$"):
            method("identity_py", x, parameters=[("a", 1)])


def test_request_errors_go_through_the_future_and_the_stream(repo: Path) -> None:
    with InferenceEngine(repo) as engine:
        fut = engine.submit("identity_py", {"INPUT0": [1.0, 2.0, 3.0, 4.0]})
        with pytest.raises(tritonlite.InvalidArgumentError, match="inference input 'INPUT0' must be a numpy array, got list"):
            fut.result(timeout=10)
        with pytest.raises(tritonlite.InvalidArgumentError, match="failed to get model version from specified version string 'one'"):
            engine.submit("identity_py", {"INPUT0": np.zeros(4, np.float32)}, model_version="one").result(timeout=10)
        stream = engine.stream_infer("identity_py", {"INPUT0": np.zeros(4, np.float64)})
        with pytest.raises(tritonlite.InvalidArgumentError, match="data-type is 'FP64', but model 'identity_py' expects 'FP32'"):
            list(stream)
        out = list(engine.stream_infer("identity_py", {"INPUT0": np.arange(4, dtype=np.float32)}, request_id="s1"))
        assert len(out) == 1 and out[0].id == "s1" and out[0].as_numpy("OUTPUT0").tolist() == [0, 1, 2, 3]


def test_numpy_scalars_count_as_zero_d_arrays(tmp_path: Path) -> None:
    from model_repos import IDENTITY_PY, identity_py_config, write_model

    write_model(tmp_path, "one_py", identity_py_config("one_py", dims="[ 1 ]", dtype="TYPE_INT64"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path) as engine:
        with pytest.raises(tritonlite.InvalidArgumentError) as info:  # a numpy scalar is a 0-d array: a shape error
            engine.infer("one_py", {"INPUT0": np.int64(7)})
        assert str(info.value) == ("[request id: <id_unknown>] unexpected shape for input 'INPUT0' for model 'one_py'. "
                                   "Expected [1], got []. ")  # Triton ends it with ". "
        with pytest.raises(tritonlite.InvalidArgumentError) as info:
            engine.infer("one_py", {"INPUT0": 7})
        assert str(info.value) == ("[request id: <id_unknown>] inference input 'INPUT0' must be a numpy array, got int: "
                                   "model 'one_py' expects 'INT64' (np.asarray(value, dtype=np.int64))")
        out = engine.infer("one_py", {"INPUT0": np.array([7])}).as_numpy("OUTPUT0")
        assert out.dtype == np.int64 and out.tolist() == [7]
