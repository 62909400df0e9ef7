"""The pb_utils surface: tensors, helpers, errors, logging, ModelConfig rules, BLS and model control."""

from __future__ import annotations

import concurrent.futures
import json
import logging

import numpy as np
import pytest

from tritonlite.backends.python import pb_utils
from tritonlite.backends.python._context import CURRENT
from tritonlite.errors import NotFoundError
from tritonlite.request import InferResult
from pybackend_harness import load, make_request  # noqa: F401 (load is a fixture)


# ---------------------------------------------------------------- tensors
def test_tensor_basics():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = pb_utils.Tensor("X", arr)
    assert t.name() == "X" and t.as_numpy() is arr and t.shape() == [2, 3]
    assert t.triton_dtype() == 11 and t.is_cpu() is True


def test_tensor_empty_name_and_non_contiguous():
    with pytest.raises(pb_utils.TritonModelException, match="Tensor name cannot be an empty string."):
        pb_utils.Tensor("", np.zeros(1))
    t = pb_utils.Tensor("T", np.arange(6, dtype=np.int16).reshape(2, 3).T)
    assert t.as_numpy().flags.c_contiguous and t.as_numpy().tolist() == [[0, 3], [1, 4], [2, 5]]


@pytest.mark.parametrize(("dtype", "code"), [
    (np.bool_, 1), (np.uint8, 2), (np.uint16, 3), (np.uint32, 4), (np.uint64, 5), (np.int8, 6), (np.int16, 7),
    (np.int32, 8), (np.int64, 9), (np.float16, 10), (np.float32, 11), (np.float64, 12), (np.object_, 13)])
def test_tensor_dtypes(dtype, code):
    value = np.array([b"x"], dtype=np.object_) if dtype is np.object_ else np.zeros(2, dtype=dtype)
    assert pb_utils.Tensor("T", value).triton_dtype() == code


def test_bytes_tensors_become_object_arrays_of_bytes():
    t = pb_utils.Tensor("S", np.array([[b"a\x00", b"bc"]], dtype=np.bytes_))
    assert t.triton_dtype() == 13 and t.as_numpy().dtype == np.object_ and t.as_numpy().tolist() == [[b"a", b"bc"]]
    mixed = pb_utils.Tensor("M", np.array(["héllo", 7, b"raw"], dtype=np.object_)).as_numpy()
    assert mixed.tolist() == ["héllo".encode(), b"7", b"raw"]
    same = np.array([b"keep"], dtype=np.object_)
    assert pb_utils.Tensor("K", same).as_numpy() is same


def test_tensor_dlpack_round_trip():
    arr = np.arange(4, dtype=np.int32)
    t = pb_utils.Tensor("D", arr)
    assert t.__dlpack_device__() == (1, 0)
    back = pb_utils.Tensor.from_dlpack("E", t.to_dlpack())
    assert back.name() == "E" and back.as_numpy().tolist() == [0, 1, 2, 3] and back.triton_dtype() == 8
    via_protocol = pb_utils.Tensor.from_dlpack("F", t)
    assert np.shares_memory(via_protocol.as_numpy(), arr)
    assert np.from_dlpack(t).tolist() == [0, 1, 2, 3]


def test_tensor_dlpack_errors():
    with pytest.raises(pb_utils.TritonModelException, match="DLPack does not have support for string tensors."):
        pb_utils.Tensor("S", np.array([b"x"], dtype=np.object_)).to_dlpack()
    with pytest.raises(pb_utils.TritonModelException, match="not contiguous"):
        pb_utils.Tensor.from_dlpack("N", np.arange(6).reshape(2, 3).T)
    with pytest.raises(pb_utils.TritonModelException, match="Tensor must be a DLPack capsule"):
        pb_utils.Tensor.from_dlpack("N", [1, 2])
    with pytest.raises(pb_utils.TritonModelException, match="Tensor name cannot be an empty string."):
        pb_utils.Tensor.from_dlpack("", np.zeros(1))


# ---------------------------------------------------------------- module helpers
def test_lookup_helpers():
    a, b = pb_utils.Tensor("A", np.zeros(1)), pb_utils.Tensor("B", np.ones(1))
    resp = pb_utils.InferenceResponse([a, b])
    assert pb_utils.get_output_tensor_by_name(resp, "B") is b
    assert pb_utils.get_output_tensor_by_name(resp, "C") is None
    req = pb_utils.InferenceRequest(inputs=[a, b], requested_output_names=[], model_name="m")
    assert pb_utils.get_input_tensor_by_name(req, "A") is a
    assert pb_utils.get_input_tensor_by_name(req, "Z") is None
    cfg = {"input": [{"name": "I", "data_type": "TYPE_FP32"}], "output": [{"name": "O", "data_type": "TYPE_INT8"}]}
    assert pb_utils.get_input_config_by_name(cfg, "I") == {"name": "I", "data_type": "TYPE_FP32"}
    assert pb_utils.get_input_config_by_name(cfg, "O") is None
    assert pb_utils.get_output_config_by_name(cfg, "O")["data_type"] == "TYPE_INT8"
    assert pb_utils.get_output_config_by_name({}, "O") is None


def test_decoupled_policy_helper():
    assert pb_utils.using_decoupled_model_transaction_policy({"model_transaction_policy": {"decoupled": True}}) is True
    assert pb_utils.using_decoupled_model_transaction_policy({"model_transaction_policy": {"decoupled": False}}) is False
    assert pb_utils.using_decoupled_model_transaction_policy({}) is False


def test_type_tables():
    assert pb_utils.triton_string_to_numpy("TYPE_FP32") is np.float32
    assert pb_utils.triton_string_to_numpy("TYPE_STRING") is np.object_
    assert pb_utils.triton_string_to_numpy("TYPE_BOOL") is bool
    assert "TYPE_BF16" not in pb_utils.TRITON_STRING_TO_NUMPY
    with pytest.raises(KeyError):
        pb_utils.triton_string_to_numpy("TYPE_BF16")
    assert [pb_utils.triton_to_numpy_type(i) for i in (1, 8, 11, 13)] == [np.bool_, np.int32, np.float32, np.object_]
    assert pb_utils.triton_to_numpy_type(14) is None
    assert pb_utils.numpy_to_triton_type(np.float16) == 10
    assert pb_utils.numpy_to_triton_type(np.dtype(np.uint64)) == 5
    assert pb_utils.numpy_to_triton_type(np.bytes_) == 13 and pb_utils.numpy_to_triton_type(np.dtype("S4")) == 13
    assert pb_utils.numpy_to_triton_type(np.object_) == 13
    assert pb_utils.numpy_to_triton_type(np.complex64) is None


def test_bytes_serialization():
    data = np.array([[b"ab", "c"], [b"", 5]], dtype=np.object_)
    raw = pb_utils.serialize_byte_tensor(data)
    assert raw == b"\x02\x00\x00\x00ab\x01\x00\x00\x00c\x00\x00\x00\x00\x01\x00\x00\x005"
    back = pb_utils.deserialize_bytes_tensor(raw)
    assert back.dtype == np.object_ and back.tolist() == [b"ab", b"c", b"", b"5"]
    assert pb_utils.deserialize_bytes_tensor(np.frombuffer(raw, dtype=np.uint8)).tolist() == back.tolist()
    assert pb_utils.serialize_byte_tensor(np.array([], dtype=np.object_)) == b""


def test_constants():
    assert (pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_START, pb_utils.TRITONSERVER_REQUEST_FLAG_SEQUENCE_END) == (1, 2)
    assert pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL == 1
    assert (pb_utils.TRITONSERVER_REQUEST_RELEASE_ALL, pb_utils.TRITONSERVER_REQUEST_RELEASE_RESCHEDULE) == (1, 2)
    assert pb_utils.TRITONSERVER_MEMORY_CPU != pb_utils.TRITONSERVER_MEMORY_GPU
    pm = pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_GPU, 1)
    assert (pm.preferred_memory_type, pm.preferred_device_id) == (pb_utils.TRITONSERVER_MEMORY_GPU, 1)
    kinds = pb_utils.MetricFamily
    assert (kinds.COUNTER, kinds.GAUGE, kinds.HISTOGRAM) == (0, 1, 2)  # MetricFamily: tests/metrics/test_custom_metrics.py


# ---------------------------------------------------------------- errors, responses, logging
def test_triton_error():
    names = ["UNKNOWN", "INTERNAL", "NOT_FOUND", "INVALID_ARG", "UNAVAILABLE", "UNSUPPORTED", "ALREADY_EXISTS", "CANCELLED"]
    assert [getattr(pb_utils.TritonError, n) for n in names] == list(range(8))
    err = pb_utils.TritonError("bad")
    assert err.message() == "bad" and err.code() == pb_utils.TritonError.INTERNAL and str(err) == "bad"
    assert pb_utils.TritonError("x", pb_utils.TritonError.NOT_FOUND).code() == 2
    assert not isinstance(err, BaseException)
    exc = pb_utils.TritonModelException("boom")
    assert isinstance(exc, Exception) and str(exc) == "boom" and exc.message() == "boom"


def test_inference_response():
    t = pb_utils.Tensor("O", np.zeros(1))
    resp = pb_utils.InferenceResponse(output_tensors=[t], parameters={"a": 1, "b": "s", "c": False})
    assert resp.output_tensors() == [t] and not resp.has_error() and resp.error() is None
    assert json.loads(resp.parameters()) == {"a": 1, "b": "s", "c": False}
    assert pb_utils.InferenceResponse().output_tensors() == [] and json.loads(pb_utils.InferenceResponse().parameters()) == {}
    failed = pb_utils.InferenceResponse(error=pb_utils.TritonError("no"))
    assert failed.has_error() and failed.error().message() == "no"
    with pytest.raises(TypeError):
        pb_utils.InferenceResponse(["not a tensor"])
    with pytest.raises(pb_utils.TritonModelException, match="Expect parameters values to have type bool/int/str"):
        pb_utils.InferenceResponse(parameters={"f": 1.5})
    with pytest.raises(pb_utils.TritonModelException, match="Expect parameters keys to have type str"):
        pb_utils.InferenceResponse(parameters={1: 1})


def test_logger_uses_stdlib_logging(caplog):
    caplog.set_level(logging.DEBUG, logger="tritonlite.python_model")
    L = pb_utils.Logger
    L.log_info("i")
    L.log_warn("w")
    L.log_error("e")
    L.log_verbose("v")
    L.log("explicit", L.ERROR)
    L.log("default")
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert got == [
        ("tritonlite.python_model", logging.INFO, "i"), ("tritonlite.python_model", logging.WARNING, "w"),
        ("tritonlite.python_model", logging.ERROR, "e"), ("tritonlite.python_model", logging.DEBUG, "v"),
        ("tritonlite.python_model", logging.ERROR, "explicit"), ("tritonlite.python_model", logging.INFO, "default"),
    ]
    assert (L.INFO, L.WARNING, L.ERROR, L.VERBOSE) == (0, 1, 2, 3)
    assert caplog.records[0].filename == "test_python_pb_utils.py"
    assert logging.getLogger("tritonlite.python_model").handlers == []


# ---------------------------------------------------------------- ModelConfig (auto-complete)
def _mc(**extra):
    return pb_utils.ModelConfig(json.dumps({"name": "m", "max_batch_size": 0, "input": [], "output": [], **extra}))


def test_model_config_max_batch_size():
    mc = _mc()
    mc.set_max_batch_size(8)
    assert mc.as_dict()["max_batch_size"] == 8
    mc.set_max_batch_size(16)
    with pytest.raises(ValueError) as info:
        mc.set_max_batch_size(4)
    assert str(info.value) == ("configuration specified max_batch_size 16, but in auto-complete-config function "
                               "for model 'm' specified max_batch_size 4")


def test_model_config_dynamic_batching():
    mc = _mc()
    mc.set_dynamic_batching()
    assert mc.as_dict()["dynamic_batching"] == {}
    kept = _mc(dynamic_batching={"max_queue_delay_microseconds": 5})
    kept.set_dynamic_batching()
    assert kept.as_dict()["dynamic_batching"] == {"max_queue_delay_microseconds": 5}
    for other in ("sequence_batching", "ensemble_scheduling"):
        with pytest.raises(ValueError) as info:
            _mc(**{other: {}}).set_dynamic_batching()
        assert str(info.value) == (f"Configuration specified scheduling_choice as '{other}', but auto-complete-config "
                                   "function for model 'm' tries to set scheduling_choice as 'dynamic_batching'")


def test_model_config_add_input_rules():
    mc = _mc(input=[{"name": "A", "data_type": "TYPE_INVALID", "dims": []}, {"name": "B", "data_type": "TYPE_FP32", "dims": [2]}])
    mc.add_input({"name": "A", "data_type": "TYPE_INT32", "dims": [3], "optional": True})
    assert mc.as_dict()["input"][0] == {"name": "A", "data_type": "TYPE_INT32", "dims": [3], "optional": True}
    mc.add_input({"name": "B", "data_type": "TYPE_FP32", "dims": [2]})
    mc.add_input({"name": "C", "data_type": "TYPE_STRING", "dims": [-1]})
    assert [i["name"] for i in mc.as_dict()["input"]] == ["A", "B", "C"]
    cases = [
        ({"name": "X", "data_type": "TYPE_FP32", "dims": [1], "shape": [1]},
         "input 'X' in auto-complete-config function for model 'm' contains property other than 'name', 'data_type', 'dims' and 'optional'."),
        ({"data_type": "TYPE_FP32", "dims": [1]}, "input in auto-complete-config function for model 'm' is missing 'name' property."),
        ({"name": "X", "dims": [1]}, "input 'X' in auto-complete-config function for model 'm' is missing 'data_type' property."),
        ({"name": "X", "data_type": "TYPE_FP32"}, "input 'X' in auto-complete-config function for model 'm' is missing 'dims' property."),
        ({"name": "B", "data_type": "TYPE_INT8", "dims": [2]},
         "unable to load model 'm', configuration expects datatype TYPE_FP32 for input 'B', model provides TYPE_INT8"),
        ({"name": "B", "data_type": "TYPE_FP32", "dims": [5]},
         "model 'm', tensor 'B': the model expects dims [5] but the model configuration specifies dims [2]"),
        ({"name": "A", "data_type": "TYPE_INT32", "dims": [3], "optional": False},
         "model 'm', tensor 'A': the model expects optional False but the model configuration specifies optional True"),
    ]
    for tensor, message in cases:
        with pytest.raises(ValueError) as info:
            mc.add_input(tensor)
        assert str(info.value) == message


def test_model_config_add_output_rules():
    mc = _mc(output=[{"name": "O", "data_type": "TYPE_FP32", "dims": []}])
    mc.add_output({"name": "O", "data_type": "TYPE_FP32", "dims": [4]})
    assert mc.as_dict()["output"] == [{"name": "O", "data_type": "TYPE_FP32", "dims": [4]}]
    with pytest.raises(ValueError) as info:
        mc.add_output({"name": "P", "data_type": "TYPE_FP32", "dims": [1], "optional": True})
    assert str(info.value) == ("output 'P' in auto-complete-config function for model 'm' contains property other "
                               "than 'name', 'data_type' and 'dims'.")
    with pytest.raises(ValueError) as info:
        mc.add_output({"name": "O", "data_type": "TYPE_INT64", "dims": [4]})
    assert str(info.value) == "unable to load model 'm', configuration expects datatype TYPE_FP32 for output 'O', model provides TYPE_INT64"
    with pytest.raises(ValueError) as info:
        mc.add_output({"name": "O", "data_type": "TYPE_FP32", "dims": [3]})
    assert str(info.value) == "model 'm', tensor 'O': the model expects dims [3] but the model configuration specifies dims [4]"
    with pytest.raises(ValueError, match="is missing 'dims' property."):
        mc.add_output({"name": "Q", "data_type": "TYPE_FP32"})


def test_model_config_transaction_policy():
    mc = _mc()
    mc.set_model_transaction_policy({"decoupled": True})
    mc.set_model_transaction_policy({"decoupled": True})
    assert mc.as_dict()["model_transaction_policy"] == {"decoupled": True}
    with pytest.raises(ValueError) as info:
        mc.set_model_transaction_policy({"decoupled": False})
    assert str(info.value) == "trying to change decoupled property in auto-complete-config for model 'm', which is already set to 'True'."
    with pytest.raises(ValueError) as info:
        mc.set_model_transaction_policy({"other": 1})
    assert str(info.value) == "model transaction property in auto-complete-config function for model 'm' contains property other than 'decoupled'."


# ---------------------------------------------------------------- requests and BLS
def test_bls_request_constructor():
    t = pb_utils.Tensor("I", np.zeros(2, np.float32))
    req = pb_utils.InferenceRequest(model_name="other", inputs=[t], requested_output_names=["O"], request_id="r1",
                                    correlation_id="c", flags=2, timeout=100, model_version=3, parameters={"k": "v"})
    assert req.model_name() == "other" and req.inputs() == [t] and req.requested_output_names() == ["O"]
    assert (req.request_id(), req.correlation_id(), req.flags(), req.timeout(), req.model_version()) == ("r1", "c", 2, 100, 3)
    assert json.loads(req.parameters()) == {"k": "v"}
    req.set_flags(1)
    assert req.flags() == 1 and req.is_cancelled() is False
    core = req._to_core()
    assert (core.model_name, core.requested_outputs, core.model_version, core.id, core.timeout_us) == ("other", ("O",), 3, "r1", 100)
    assert core.inputs["I"] is t.as_numpy() and core.parameters == {"k": "v"} and core.correlation_id == "c" and core.flags == 1
    with pytest.raises(TypeError, match="model_name"):
        pb_utils.InferenceRequest(inputs=[], requested_output_names=[])
    with pytest.raises(pb_utils.TritonModelException, match="Only requests passed to execute"):
        req.get_response_sender()


def test_bls_without_engine_raises():
    req = pb_utils.InferenceRequest(model_name="x", inputs=[], requested_output_names=[])
    with pytest.raises(pb_utils.TritonModelException, match="BLS needs a running engine"):
        req.exec()
    with pytest.raises(pb_utils.TritonModelException, match="needs a running engine"):
        pb_utils.is_model_ready("x")
    with pytest.raises(pb_utils.TritonModelException, match="only available inside a model"):
        pb_utils.get_model_dir()


class FakeEngine:
    """Just enough engine for BLS: runs add_sub's instance synchronously."""

    def __init__(self, target):
        self.target = target
        self.seen = []
        self.calls = []

    def _run(self, core):
        self.seen.append(core)
        if core.model_name != "add_sub":
            raise NotFoundError(f"Request for unknown model: '{core.model_name}' is not found")
        core.backend_inputs = dict(core.inputs)
        core.output_names = core.requested_outputs or ("OUTPUT0", "OUTPUT1")
        return self.target.execute([core])[0]

    def _submit_request(self, core, inline=False):
        fut = concurrent.futures.Future()
        try:
            fut.set_result(self._run(core))
        except Exception as exc:
            fut.set_exception(exc)
        return fut

    def _submit_stream(self, core):
        result = self._run(core)
        return iter([result, InferResult()])

    def load_model(self, name, **kwargs):
        self.calls.append(("load_model", name, kwargs))

    def unload_model(self, name, unload_dependents=False):
        self.calls.append(("unload_model", name, unload_dependents))

    def is_model_ready(self, name, version=""):
        self.calls.append(("is_model_ready", name, version))
        return name == "add_sub"


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
def test_bls_calls_engine(load, mode):
    engine = FakeEngine(load("add_sub"))
    caller = load("bls_caller", engine=engine)
    data = np.array([1, 2, 3, 4], np.float32)
    req, _ = make_request({"IN": data}, ("SUM",), parameters={"mode": mode})
    [result] = caller.execute([req])
    assert result.outputs["SUM"].tolist() == [2, 4, 6, 8]
    core = engine.seen[0]
    assert core.requested_outputs == ("OUTPUT0",) and core.parameters == {"origin": "bls"}
    assert len(engine.seen) == (2 if mode == "async" else 1)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_bls_error_becomes_response_error(load, mode):
    engine = FakeEngine(load("add_sub"))
    caller = load("bls_caller", engine=engine)
    req, _ = make_request({"IN": np.zeros(4, np.float32)}, ("ERR",), parameters={"mode": mode, "target": "nope"})
    [result] = caller.execute([req])
    assert result.outputs["ERR"].tolist() == [b"2:Request for unknown model: 'nope' is not found"]


def test_model_control_goes_to_engine_of_current_model(load):
    engine = FakeEngine(None)
    inst = load("lifecycle", engine=engine)
    token = CURRENT.set(inst.context)
    try:
        pb_utils.load_model("a")
        pb_utils.load_model("b", config='{"backend":"onnxruntime"}', files={"file:1/model.onnx": b"x"})
        pb_utils.unload_model("a", unload_dependents=True)
        assert pb_utils.is_model_ready("add_sub") is True
        assert pb_utils.is_model_ready("zzz", "2") is False
    finally:
        CURRENT.reset(token)
    assert engine.calls == [
        ("load_model", "a", {}),
        ("load_model", "b", {"config": '{"backend":"onnxruntime"}', "files": {"file:1/model.onnx": b"x"}}),
        ("unload_model", "a", True),
        ("is_model_ready", "add_sub", ""),
        ("is_model_ready", "zzz", "2"),
    ]
