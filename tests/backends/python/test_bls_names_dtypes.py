"""Issue 16 in the engine: names given as bytes (python_backend's std::string arguments take str and bytes),
and outputs whose returned dtype differs from the declared one (Triton keeps and labels the returned dtype)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from model_repos import build_triton_example_models
from tritonlite import InferenceEngine
from tritonlite.backends.python import pb_utils
from tritonlite.capi._impl import encoded_outputs
from tritonlite.datatypes import DataType, output_datatype
from tritonlite.errors import InvalidArgumentError
from tritonlite.protocol.tensors import datatype_of
from tritonlite.request import InferResult


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceEngine]:
    root = build_triton_example_models(tmp_path_factory.mktemp("examples") / "models")
    with InferenceEngine(root) as eng:
        yield eng


def _pair() -> dict[str, np.ndarray]:
    return {"INPUT0": np.array([1, 2, 3, 4], np.float32), "INPUT1": np.array([4, 3, 2, 1], np.float32)}


# ---- names as bytes -----------------------------------------------------------------------------------
def test_bls_sync_takes_the_model_name_from_a_bytes_tensor(engine: InferenceEngine) -> None:
    result = engine.infer("bls_sync", {"MODEL_NAME": np.array([b"add_sub"], dtype=np.object_), **_pair()})
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), np.full(4, 5, np.float32))
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), np.array([-3, -1, 1, 3], np.float32))
    assert result.as_numpy("OUTPUT0").dtype == np.float32


def test_bls_sync_unknown_bytes_name_reports_the_decoded_name(engine: InferenceEngine) -> None:
    with pytest.raises(Exception) as info:
        engine.infer("bls_sync", {"MODEL_NAME": np.array([b"nope"], dtype=np.object_), **_pair()})
    assert "Request for unknown model: 'nope' is not found" in str(info.value)
    assert "b'nope'" not in str(info.value)


def test_bls_request_name_arguments_accept_bytes() -> None:
    t = pb_utils.Tensor(b"IN", np.zeros(1, np.int32))
    req = pb_utils.InferenceRequest(model_name=b"add_sub", inputs=[t], requested_output_names=[b"OUTPUT0", "OUTPUT1"],
                                    request_id=b"r-1", model_version=np.int64(2))
    assert (req.model_name(), req.request_id(), req.requested_output_names()) == ("add_sub", "r-1", ["OUTPUT0", "OUTPUT1"])
    core = req._to_core()
    assert (core.model_name, core.requested_outputs, core.id, core.model_version) == ("add_sub", ("OUTPUT0", "OUTPUT1"), "r-1", 2)
    assert t.name() == "IN" and list(core.inputs) == ["IN"]
    assert pb_utils.Tensor.from_dlpack(b"D", np.arange(2)).name() == "D"
    assert pb_utils.TritonError(b"bad input").message() == "bad input"


def test_bls_request_rejects_what_python_backend_rejects() -> None:
    with pytest.raises(TypeError, match="^model_name must be str or bytes, found type '<class 'int'>'$"):
        pb_utils.InferenceRequest(model_name=7, inputs=[], requested_output_names=[])
    with pytest.raises(TypeError, match="^requested_output_names must be a list of names, not a single str or bytes$"):
        pb_utils.InferenceRequest(model_name="m", inputs=[], requested_output_names="OUT")
    with pytest.raises(pb_utils.TritonModelException, match="^Correlation ID must be integer or string$"):
        pb_utils.InferenceRequest(model_name="m", inputs=[], requested_output_names=[], correlation_id=b"c")
    with pytest.raises(TypeError, match="^model_version must be an int, found type '<class 'str'>'$"):
        pb_utils.InferenceRequest(model_name="m", inputs=[], requested_output_names=[], model_version="1")


# ---- declared INT32, returned int64: every output path keeps and labels int64 ------------------------
@pytest.mark.parametrize("model", ["bls_decoupled_sync", "bls_decoupled_async"])
def test_bls_decoupled_examples_sum_into_int64(engine: InferenceEngine, model: str) -> None:
    calls = 2 if model.endswith("async") else 1
    for n in (4, 2, 0, 1):
        out = engine.infer(model, {"IN": np.array([n], np.int32)}).as_numpy("SUM")
        assert out.dtype == np.int64 and out.tolist() == [calls * n * n]


def test_unary_decoupled_and_ensemble_outputs_keep_the_returned_dtype(engine: InferenceEngine) -> None:
    x = np.array([21], np.int32)
    unary = engine.infer("widen_int32", {"IN": x}).as_numpy("OUT")
    assert unary.dtype == np.int64 and unary.tolist() == [42]
    stream = [r.as_numpy("OUT") for r in engine.stream_infer("widen_int32_decoupled", {"IN": np.array([3], np.int32)})]
    stream = [a for a in stream if a is not None]
    assert [a.dtype for a in stream] == [np.dtype(np.int64)] * 3 and [a.tolist() for a in stream] == [[0], [1], [2]]
    ens = engine.infer("ens_widen", {"IN": x}).as_numpy("WIDE")
    assert ens.dtype == np.int64 and ens.tolist() == [42]


def test_ensemble_step_refuses_the_int64_tensor_for_its_int32_input(engine: InferenceEngine) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        engine.infer("ens_widen_then_int32", {"IN": np.array([1], np.int32)})
    assert "inference input 'IN' data-type is 'INT64', but model 'identity_int32' expects 'INT32'" in info.value.message


def test_bls_caller_sees_the_returned_dtype() -> None:
    from tritonlite.backends.python._requests import _from_infer_result

    resp = _from_infer_result(InferResult(outputs={"OUT": np.array([1], np.int64)}))
    assert resp.output_tensors()[0].triton_dtype() == int(DataType.INT64)


# ---- the one labelling rule the doors share ----------------------------------------------------------
@pytest.mark.parametrize(("dtype", "declared", "label"), [
    (np.int64, DataType.INT32, "INT64"), (np.int32, DataType.INT32, "INT32"), (np.float64, DataType.FP32, "FP64"),
    (np.uint16, DataType.BF16, "BF16"), (np.uint16, DataType.FP16, "UINT16"), (np.uint16, None, "UINT16"),
    (np.object_, DataType.INT32, "BYTES"), (np.dtype(">i4"), DataType.INT32, "INT32"), (np.bool_, DataType.UINT8, "BOOL"),
])
def test_output_label_is_the_array_dtype(dtype: object, declared: DataType | None, label: str) -> None:
    assert output_datatype(dtype, declared).protocol_name == label
    assert datatype_of(np.zeros(1, dtype), declared.protocol_name if declared is not None else None) == label


def test_c_and_java_encoder_labels_int64_for_an_int32_output(engine: InferenceEngine) -> None:
    result = engine.infer("widen_int32", {"IN": np.array([5], np.int32)})
    [(name, code, shape, buf)] = list(encoded_outputs(engine, result))
    assert (name, code, tuple(shape)) == ("OUT", int(DataType.INT64), (1,))
    assert bytes(memoryview(buf).cast("B")) == np.array([10], "<i8").tobytes()
