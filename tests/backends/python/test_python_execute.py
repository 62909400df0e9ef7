"""Non-decoupled execution: conversions, return checks, errors, async execute, initialize args."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonlite.errors import ErrorCode, InternalError, InvalidArgumentError
from pybackend_harness import load, MODELS, make_request  # noqa: F401 (load is a fixture)


def test_add_sub_values_dtypes_and_shapes(load):
    inst = load("add_sub")
    a = np.array([1, 2, 3, 4], dtype=np.float32)
    b = np.array([0.5, 0.5, 1, 1], dtype=np.float32)
    req, _ = make_request({"INPUT0": a, "INPUT1": b}, ("OUTPUT0", "OUTPUT1"))
    [result] = inst.execute([req])
    np.testing.assert_array_equal(result.outputs["OUTPUT0"], a + b)
    np.testing.assert_array_equal(result.outputs["OUTPUT1"], a - b)
    assert result.outputs["OUTPUT0"].dtype == np.float32 and result.outputs["OUTPUT0"].shape == (4,)
    assert result.error is None
    assert req.times.compute_input_end > 0 and req.times.compute_infer_end >= req.times.compute_input_end


def test_outputs_are_pruned_to_requested(load):
    inst = load("add_sub")
    a = np.ones(4, dtype=np.float32)
    req, _ = make_request({"INPUT0": a, "INPUT1": a}, ("OUTPUT1",))
    [result] = inst.execute([req])
    assert list(result.outputs) == ["OUTPUT1"]


def test_batch_of_requests_gets_one_result_each(load):
    inst = load("add_sub")
    reqs = [make_request({"INPUT0": np.full(4, i, np.float32), "INPUT1": np.ones(4, np.float32)}, ("OUTPUT0",))[0] for i in range(3)]
    results = inst.execute(reqs)
    assert [r.outputs["OUTPUT0"][0] for r in results] == [1.0, 2.0, 3.0]


def test_inputs_are_not_copied(load):
    inst = load("bad_return")
    seen = []
    original = inst.model.execute

    def spy(requests):
        seen.append(requests[0].inputs()[0].as_numpy())
        return original(requests)

    inst.model.execute = spy
    data = np.array([[3]], dtype=np.int32)
    req, _ = make_request({"IN": data}, ("OUT",))
    inst.execute([req])
    assert seen[0] is data


def test_bytes_echo_and_parameters(load):
    inst = load("bytes_echo")
    data = np.array([[b"ab", b"", b"caf\xc3\xa9"]], dtype=np.object_)
    req, _ = make_request({"IN": data}, ("OUT", "UPPER", "LENGTHS"), parameters={"tag": "t1"})
    [result] = inst.execute([req])
    out = result.outputs["OUT"]
    assert out.dtype == np.object_ and out.shape == (1, 3) and out.tolist() == [[b"ab", b"", b"caf\xc3\xa9"]]
    upper = result.outputs["UPPER"]
    assert upper.dtype == np.object_ and upper.tolist() == [[b"AB", b"", "CAFÉ".encode()]]
    assert all(type(v) is bytes for v in upper.flat)
    assert result.outputs["LENGTHS"].dtype == np.int32 and result.outputs["LENGTHS"].tolist() == [[2, 0, 5]]
    assert result.parameters == {"echo_count": 3, "seen": "t1", "ok": True}


def test_exception_in_execute_is_internal_error(load):
    inst = load("raises")
    req, _ = make_request({"IN": np.array([1], np.int32)}, ("OUT",))
    with pytest.raises(InternalError) as info:
        inst.execute([req])
    assert str(info.value) == "Failed to process the request(s) for model 'raises_0', message: ValueError: input must be positive"
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("tuple", "Expected a list in the execute return, found type '<class 'tuple'>'."),
        ("short", "Number of InferenceResponse objects do not match the number of InferenceRequest objects. "
                  "InferenceRequest(s) size is:2, and InferenceResponse(s) size is:1"),
        ("wrong_type", "Expected an 'InferenceResponse' object in the execute function return list, found type '<class 'str'>'."),
        ("sender_and_return", "Unable to send response. Non-decoupled model cannot send more than one response."),
    ],
)
def test_return_value_checks(load, mode, message):
    inst = load("bad_return")
    reqs = [make_request({"IN": np.array([[i]], np.int32)}, ("OUT",), parameters={"mode": mode})[0] for i in range(2)]
    with pytest.raises(InternalError) as info:
        inst.execute(reqs)
    assert str(info.value) == message
    assert info.value.code == ErrorCode.INTERNAL


def test_non_decoupled_response_sender(load):
    inst = load("bad_return")
    pairs = [make_request({"IN": np.array([[i]], np.int32)}, ("OUT",), parameters={"mode": "sender"}) for i in (1, 2)]
    assert inst.execute([p[0] for p in pairs]) is None
    for i, (_, col) in zip((1, 2), pairs):
        [(result, error, final)] = col.wait()
        assert final and error is None and result.outputs["OUT"].tolist() == [[2 * i]]


def test_non_decoupled_sender_after_return_sends_one_final_response(load):
    inst = load("bad_return")
    req, col = make_request({"IN": np.array([[5]], np.int32)}, ("OUT",), parameters={"mode": "sender_later"})
    assert inst.execute([req]) is None
    [(result, error, final)] = col.wait()
    assert final and result.outputs["OUT"].tolist() == [[10]]


def test_returned_list_with_none_for_sender_handled_request(load):
    inst = load("bad_return")
    pairs = [make_request({"IN": np.array([[i]], np.int32)}, ("OUT",), parameters={"mode": "mixed"}) for i in (1, 2)]
    assert inst.execute([p[0] for p in pairs]) is None
    assert [col.wait()[0][0].outputs["OUT"].tolist() for _, col in pairs] == [[[2]], [[4]]]


def test_sender_rules_for_non_decoupled_models(load):
    inst = load("bad_return")
    req, col = make_request({"IN": np.array([[1]], np.int32)}, ("OUT",), parameters={"mode": "sender_errors"})
    assert inst.execute([req]) is None
    assert inst.model.sender_errors == [
        "Inference Response object must be provided when the response flags is set to zero.",
        "Unable to send response. Unsupported flag provided.",
        "Unable to send response. Non-decoupled model cannot send complete final before sending a response.",
        "Unable to send response. Non-decoupled model cannot send more than one response.",
        "Unable to send response. Response sender has been closed.",
    ]
    [(result, error, final)] = col.items
    assert final and result.outputs["OUT"].tolist() == [[2]]


def test_error_responses_become_result_errors(load):
    inst = load("error_response")
    reqs = [make_request({"IN": np.array(v, np.float32)}, ("OUT",))[0] for v in ([1, 2], [-1, 2], [0, 1])]
    ok, bad, zero = inst.execute(reqs)
    assert ok.error is None and ok.outputs["OUT"].tolist() == [1.0, 0.5]
    assert isinstance(bad.error, InvalidArgumentError) and str(bad.error) == "negative input" and bad.outputs == {}
    assert isinstance(zero.error, InternalError) and zero.error.code == ErrorCode.INTERNAL and str(zero.error) == "zero input"


def test_async_execute_runs_on_instance_loop(load):
    inst = load("async_add")
    reqs = [make_request({"A": np.arange(n, dtype=np.int64)}, ("SUM", "DIR"))[0] for n in (3, 5)]
    results = inst.execute(reqs)
    assert [r.outputs["SUM"].tolist() for r in results] == [[3], [10]]
    assert results[0].outputs["SUM"].dtype == np.int64
    assert results[0].outputs["DIR"].tolist() == [str(MODELS / "async_add").encode()]
    assert inst.model.threads == {"tritonlite.async_add.async_add_0.asyncio"}
    assert inst.is_ready() is True
    loop_thread = inst._loop_thread
    inst.close()
    assert inst.model.finalized is True
    assert not loop_thread.is_alive() and inst._loop is None


def test_initialize_args_and_request_accessors(load):
    inst = load("args_echo")
    req, _ = make_request(
        {"IN": np.array([1], np.int32)},
        ("model_config", "model_instance_kind", "model_instance_name", "model_instance_device_id", "model_repository",
         "model_version", "model_name", "model_dir", "thread_model_dir", "request_info"),
        id="req-7", correlation_id="seq-a", flags=1, timeout_us=2500, parameters={"p": 1, "q": "x", "r": True},
    )
    [result] = inst.execute([req])
    got = {k: v.tolist()[0].decode() for k, v in result.outputs.items()}
    cfg = json.loads(got["model_config"])
    assert cfg["name"] == "args_echo" and cfg["backend"] == "python"
    assert cfg["parameters"] == {"greeting": {"string_value": "hi"}}
    assert cfg["instance_group"][0]["kind"] == "KIND_CPU" and cfg["instance_group"][0]["count"] == 1
    assert got["model_instance_kind"] == "CPU"
    assert got["model_instance_name"] == "args_echo_0"
    assert got["model_instance_device_id"] == "0"
    assert got["model_repository"] == str(MODELS / "args_echo")
    assert got["model_version"] == "1"
    assert got["model_name"] == "args_echo"
    assert got["model_dir"] == got["thread_model_dir"] == str(MODELS / "args_echo")
    info = json.loads(got["request_info"])
    assert info["types"] == {k: "str" for k in (
        "model_config", "model_instance_kind", "model_instance_name", "model_instance_device_id",
        "model_repository", "model_version", "model_name")}
    assert info["request_id"] == "req-7" and info["correlation_id"] == "seq-a" and info["flags"] == 1
    assert info["timeout"] == 2500 and info["parameters"] == {"p": 1, "q": "x", "r": True}
    assert info["cancelled"] is False
    assert info["requested"][0] == "model_config" and len(info["requested"]) == 10


def test_is_cancelled_reflects_core_request(load):
    inst = load("args_echo")
    req, _ = make_request({"IN": np.array([1], np.int32)}, ("request_info",))
    req.cancel()
    [result] = inst.execute([req])
    assert json.loads(result.outputs["request_info"].tolist()[0])["cancelled"] is True


def test_lifecycle_is_ready_and_failing_finalize(load, caplog):
    inst = load("lifecycle")
    module_calls = type(inst.model).initialize.__globals__["CALLS"]
    assert module_calls == ["initialize"]
    assert inst.is_ready() is True
    inst.model.ready = False
    assert inst.is_ready() is False
    inst.close()
    inst.close()  # idempotent
    assert module_calls == ["initialize", "finalize"]
    assert "finalize of model instance 'lifecycle_0' failed" in caplog.text


def test_each_instance_has_its_own_module_state(load):
    first, second = load("lifecycle"), load("lifecycle")
    calls_1 = type(first.model).initialize.__globals__["CALLS"]
    calls_2 = type(second.model).initialize.__globals__["CALLS"]
    assert calls_1 is not calls_2 and calls_1 == calls_2 == ["initialize"]
