"""Decode plans and response heads of the native gRPC front (tritonlite/grpc/wire.py): a planned decode
must give exactly what the full decode gives, and a planned response the exact bytes protobuf writes."""

from __future__ import annotations

import numpy as np
import pytest

from tritonlite.datatypes import DataType
from tritonlite.errors import InvalidArgumentError
from tritonlite.grpc.codec import DecodedRequest, decode_infer_request, encode_infer_response
from tritonlite.grpc.servicer import _deserializer
from tritonlite.grpc.wire import InferPlans
from tritonlite.protos import grpc_service_pb2 as pb
from tritonlite.request import InferResult
from tritonlite.validation import DeferredInputError


def _message(data: np.ndarray, *, rid: str = "", params: dict | None = None, outputs: tuple[str, ...] = ("OUT",)) -> bytes:
    msg = pb.ModelInferRequest(model_name="m", model_version="2", id=rid)
    t = msg.inputs.add(name="IN", datatype="FP32", shape=list(data.shape))
    for key, value in (params or {}).items():
        if isinstance(value, bool):
            msg.parameters[key].bool_param = value
        else:
            msg.parameters[key].int64_param = value
    for name in outputs:
        msg.outputs.add(name=name)
    msg.raw_input_contents.append(data.astype(np.float32).tobytes())
    assert t.name == "IN"
    return msg.SerializeToString()


def _full(payload: bytes) -> DecodedRequest:
    return decode_infer_request(pb.ModelInferRequest.FromString(payload), None)


def _same(a: DecodedRequest, b: DecodedRequest) -> None:
    ra, rb = a.request, b.request
    assert (ra.model_name, ra.model_version, ra.id, ra.requested_outputs) == (rb.model_name, rb.model_version, rb.id, rb.requested_outputs)
    assert (ra.parameters, ra.priority, ra.timeout_us, ra.correlation_id, ra.flags) == (rb.parameters, rb.priority, rb.timeout_us, rb.correlation_id, rb.flags)
    assert a.version_text == b.version_text and a.enable_empty_final == b.enable_empty_final
    assert ra.inputs.keys() == rb.inputs.keys()
    for k in ra.inputs:
        assert ra.inputs[k].dtype == rb.inputs[k].dtype and ra.inputs[k].shape == rb.inputs[k].shape
        np.testing.assert_array_equal(ra.inputs[k], rb.inputs[k])


def test_second_message_of_a_shape_is_decoded_from_its_plan_exactly_like_the_full_path() -> None:
    plans = InferPlans(_deserializer(pb.ModelInferRequest))
    params = {"sequence_id": 7, "sequence_start": True, "priority": 1, "custom": 5}
    first = _message(np.arange(16).reshape(1, 16), params=params)
    second = _message(np.arange(16, 32).reshape(1, 16), params=params)
    _same(plans.decode(first, None, decode_infer_request), _full(first))
    assert len(plans._plans) == 1
    planned = plans.decode(second, None, decode_infer_request)
    _same(planned, _full(second))
    assert planned.request.inputs["IN"].tolist() == [list(range(16, 32))]
    # every request gets its own parameters dict: a model changing one does not change the plan
    planned.request.parameters["custom"] = 99
    assert plans.decode(second, None, decode_infer_request).request.parameters == {"custom": 5}


def test_another_shape_or_id_is_another_plan_and_a_wrong_size_is_the_full_paths_error() -> None:
    plans = InferPlans(_deserializer(pb.ModelInferRequest))
    for payload in (_message(np.ones((1, 16))), _message(np.ones((2, 16))), _message(np.ones((1, 16)), rid="r1")):
        _same(plans.decode(payload, None, decode_infer_request), _full(payload))
        _same(plans.decode(payload, None, decode_infer_request), _full(payload))
    assert len(plans._plans) == 3
    # same leading bytes (shape [1, 16]) but 15 floats of data: from_raw's own check, Triton's text, which the
    # engine's validation raises after the names, datatypes and shapes (Triton's order)
    msg = pb.ModelInferRequest.FromString(_message(np.ones((1, 16))))
    msg.raw_input_contents[0] = np.ones(15, np.float32).tobytes()
    deferred = plans.decode(msg.SerializeToString(), None, decode_infer_request).request.inputs["IN"]
    assert type(deferred) is DeferredInputError and deferred.shape == (1, 16) and deferred.datatype is DataType.FP32
    assert deferred.error == "input byte size mismatch for input 'IN' for model 'm'. Expected 64, got 60"


def test_garbage_and_unplannable_messages_take_the_full_path() -> None:
    plans = InferPlans(_deserializer(pb.ModelInferRequest))
    assert type(plans.decode(b"\xff\xff\xff", None, decode_infer_request)).__name__ == "Malformed"
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="IN", datatype="INT32", shape=[2]).contents.int_contents.extend([1, 2])
    payload = msg.SerializeToString()
    for _ in range(2):
        assert plans.decode(payload, None, decode_infer_request).request.inputs["IN"].tolist() == [1, 2]
    assert not plans._plans  # typed contents: never planned


def test_response_bytes_equal_protobufs_own_serialization() -> None:
    plans = InferPlans(_deserializer(pb.ModelInferRequest))
    decoded = _full(_message(np.ones((1, 16)), rid="abc"))
    for outputs in ({"OUT": np.arange(16, dtype=np.float32).reshape(1, 16)},
                    {"OUT": np.arange(300, dtype=np.int64), "B": np.array([True, False])},
                    {"E": np.zeros((0, 3), np.float32)}):
        result = InferResult(outputs=outputs, model_name="m", model_version="2", id="abc")
        expected = encode_infer_response(result, decoded, lambda v: None, None).SerializeToString()
        assert plans.encode(result, decoded, lambda v: None, None) == expected
        assert plans.encode(result, decoded, lambda v: None, None) == expected  # from the cached head
        parsed = pb.ModelInferResponse.FromString(expected)
        assert [o.name for o in parsed.outputs] == list(outputs)
