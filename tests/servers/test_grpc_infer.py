"""ModelInfer over gRPC with the real tritonclient (sync and aio): data forms, datatypes, classification,
shared memory, parameters, sequences, ensembles, errors and cancellation."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")

import ml_dtypes  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.grpc.aio as aioclient  # noqa: E402
import tritonclient.utils.shared_memory as shm  # noqa: E402
from tritonclient.grpc import service_pb2 as theirs  # noqa: E402

from test_grpc_service import ECHO_TYPES, Env, client, client_error, env, rpc_error, stub  # noqa: E402,F401


def _input(name: str, array: np.ndarray, datatype: str) -> grpcclient.InferInput:
    inp = grpcclient.InferInput(name, list(array.shape), datatype)
    inp.set_data_from_numpy(array)
    return inp


def _identity(client: grpcclient.InferenceServerClient, x: np.ndarray, **kwargs: Any) -> grpcclient.InferResult:
    return client.infer("identity_py", [_input("INPUT0", x, "FP32")], **kwargs)


# ---- basic inference ---------------------------------------------------------------------------------------
def test_identity_round_trip_and_response_fields(client: grpcclient.InferenceServerClient) -> None:
    x = np.array([1.5, -2, 3, 4], np.float32)
    result = _identity(client, x, request_id="req-7")
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), x)
    resp = result.get_response()
    assert (resp.model_name, resp.model_version, resp.id) == ("identity_py", "1", "req-7")
    assert [o.name for o in resp.outputs] == ["OUTPUT0"] and list(resp.outputs[0].shape) == [4]
    assert len(resp.raw_output_contents) == 1 and resp.raw_output_contents[0] == x.tobytes()
    assert result.get_output("OUTPUT0").datatype == "FP32"


def test_onnx_batch_and_requested_outputs(client: grpcclient.InferenceServerClient) -> None:
    a = np.random.default_rng(0).random((3, 16), dtype=np.float32)
    b = np.ones((3, 16), np.float32)
    inputs = [_input("INPUT0", a, "FP32"), _input("INPUT1", b, "FP32")]
    result = client.infer("add_sub_onnx", inputs, model_version="1")
    np.testing.assert_allclose(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_allclose(result.as_numpy("OUTPUT1"), a - b)
    only = client.infer("add_sub_onnx", inputs, outputs=[grpcclient.InferRequestedOutput("OUTPUT1")])
    assert [o.name for o in only.get_response().outputs] == ["OUTPUT1"] and only.as_numpy("OUTPUT0") is None
    np.testing.assert_allclose(only.as_numpy("OUTPUT1"), a - b)


def test_ensemble(client: grpcclient.InferenceServerClient) -> None:
    a, b = np.full((2, 16), 3, np.float32), np.ones((2, 16), np.float32)
    result = client.infer("ens_add_sub", [_input("A", a, "FP32"), _input("B", b, "FP32")])
    np.testing.assert_array_equal(result.as_numpy("SUM"), a + b)
    np.testing.assert_array_equal(result.as_numpy("DIFF"), a - b)
    assert result.get_response().model_name == "ens_add_sub"


def test_every_datatype_round_trips_as_raw_bytes(client: grpcclient.InferenceServerClient) -> None:
    arrays = {
        "BOOL": np.array([True, False, True]),
        "INT8": np.array([-128, 0, 127], np.int8),
        "INT16": np.array([-300, 0, 300], np.int16),
        "INT32": np.array([-(2**31), 0, 2**31 - 1], np.int32),
        "INT64": np.array([-(2**62), 0, 2**62], np.int64),
        "UINT8": np.array([0, 1, 255], np.uint8),
        "UINT16": np.array([0, 1, 65535], np.uint16),
        "UINT32": np.array([0, 1, 2**32 - 1], np.uint32),
        "UINT64": np.array([0, 1, 2**64 - 1], np.uint64),
        "FP16": np.array([0.5, -1.25, 65504], np.float16),
        "FP32": np.array([0.1, -2.5, 3e38], np.float32),
        "FP64": np.array([0.1, -2.5, 1e300], np.float64),
        "STRING": np.array([b"", b"\x00\xffbinary", "h\u00e9llo".encode()], dtype=object),
        "BF16": np.array([1.0, -2.0, 0.5], ml_dtypes.bfloat16),
    }
    # BF16 reaches a Python model only through DLPack, which cannot export the read-only zero-copy
    # view of a raw input (the Python backend's limitation): BF16 is sent through shared memory below
    types = [t for t in ECHO_TYPES if t != "BF16"]
    wire = {t: ("BYTES" if t == "STRING" else t) for t in types}
    inputs = [_input(f"IN_{t}", arrays[t], wire[t]) for t in types]
    result = client.infer("echo", inputs)
    for t in types:
        out = result.get_output(f"OUT_{t}")
        assert out.datatype == wire[t], t
        got = result.as_numpy(f"OUT_{t}")
        assert got.dtype == arrays[t].dtype, t
        np.testing.assert_array_equal(got, arrays[t], err_msg=t)


def test_bf16_round_trip(client: grpcclient.InferenceServerClient) -> None:
    x = np.array([1.0, -2.0, 0.5, 3.140625], ml_dtypes.bfloat16)
    handle = shm.create_shared_memory_region("tl_bf16", "/tl_grpc_bf16", x.nbytes)
    try:
        shm.set_shared_memory_region(handle, [x])
        client.register_system_shared_memory("tl_bf16", "/tl_grpc_bf16", x.nbytes)
        inp = grpcclient.InferInput("IN_BF16", [4], "BF16")
        inp.set_shared_memory("tl_bf16", x.nbytes)
        result = client.infer("echo", [inp])
        assert result.get_output("OUT_BF16").datatype == "BF16"
        got = result.as_numpy("OUT_BF16")
        assert got.dtype == ml_dtypes.bfloat16
        np.testing.assert_array_equal(got.astype(np.float32), x.astype(np.float32))
    finally:
        client.unregister_system_shared_memory("tl_bf16")
        shm.destroy_shared_memory_region(handle)


def test_bf16_raw_input_decodes_to_its_bit_pattern() -> None:
    from tritonlite.grpc.codec import decode_infer_request
    from tritonlite.protos import grpc_service_pb2 as ours

    x = np.array([1.0, -2.0], ml_dtypes.bfloat16)
    req = ours.ModelInferRequest(model_name="m", raw_input_contents=[x.tobytes()])
    req.inputs.add(name="IN", datatype="BF16", shape=[2])
    arr = decode_infer_request(req, None).request.inputs["IN"]
    assert arr.dtype == np.uint16 and arr.tobytes() == x.tobytes()


def test_zero_element_input(client: grpcclient.InferenceServerClient) -> None:
    result = client.infer("echo", [_input("IN_FP32", np.zeros(0, np.float32), "FP32")])
    assert result.as_numpy("OUT_FP32").shape == (0,)


def test_large_message(client: grpcclient.InferenceServerClient) -> None:
    big = np.arange(5 * 1024 * 1024, dtype=np.float32)  # 20 MiB each way, over gRPC's 4 MiB default
    result = client.infer("echo", [_input("IN_FP32", big, "FP32")])
    np.testing.assert_array_equal(result.as_numpy("OUT_FP32"), big)


def test_compressed_requests_and_responses(client: grpcclient.InferenceServerClient) -> None:
    x = np.linspace(0, 1, 4, dtype=np.float32)
    for algorithm in ("gzip", "deflate"):
        result = _identity(client, x, compression_algorithm=algorithm)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), x)


# ---- typed contents (KServe's non-raw form; tritonclient never sends it) ------------------------------------
def _typed_request(**tensors: tuple[str, list[int], str, list[Any]]) -> Any:
    req = theirs.ModelInferRequest(model_name="echo")
    for name, (datatype, shape, field, values) in tensors.items():
        t = req.inputs.add(name=name, datatype=datatype, shape=shape)
        getattr(t.contents, field).extend(values)
    return req


def test_typed_contents_for_every_kind(stub: Any) -> None:
    req = _typed_request(
        IN_BOOL=("BOOL", [2], "bool_contents", [True, False]),
        IN_INT8=("INT8", [3], "int_contents", [-1, 5, 300]),  # 300 keeps its low byte, as in Triton
        IN_UINT16=("UINT16", [2], "uint_contents", [7, 65535]),
        IN_INT64=("INT64", [1], "int64_contents", [-(2**40)]),
        IN_UINT64=("UINT64", [1], "uint64_contents", [2**63]),
        IN_FP32=("FP32", [2], "fp32_contents", [0.5, 1.5]),
        IN_FP64=("FP64", [1], "fp64_contents", [2.25]),
        IN_STRING=("BYTES", [2], "bytes_contents", [b"ab", b""]),
    )
    resp = stub.ModelInfer(req)
    result = grpcclient.InferResult(resp)
    np.testing.assert_array_equal(result.as_numpy("OUT_BOOL"), [True, False])
    np.testing.assert_array_equal(result.as_numpy("OUT_INT8"), np.array([-1, 5, 44], np.int8))
    np.testing.assert_array_equal(result.as_numpy("OUT_UINT16"), np.array([7, 65535], np.uint16))
    assert result.as_numpy("OUT_INT64")[0] == -(2**40) and result.as_numpy("OUT_UINT64")[0] == 2**63
    assert result.as_numpy("OUT_FP32").tolist() == [0.5, 1.5] and result.as_numpy("OUT_FP64")[0] == 2.25
    assert list(result.as_numpy("OUT_STRING")) == [b"ab", b""]


def test_typed_contents_errors(stub: Any) -> None:
    wrong = _typed_request(IN_FP32=("FP32", [1], "int_contents", [1]))
    err = rpc_error(stub.ModelInfer, wrong)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unexpected explicit tensor data for input tensor 'IN_FP32' for model 'echo' of type 'INT32', expected datatype 'FP32'" in err.details()
    two = _typed_request(IN_FP32=("FP32", [1], "fp32_contents", [1.0]))
    two.inputs[0].contents.fp64_contents.append(1.0)
    assert "binary data was already supplied" in rpc_error(stub.ModelInfer, two).details()
    mixed = _typed_request(IN_FP32=("FP32", [1], "fp32_contents", [1.0]))
    mixed.inputs.add(name="IN_FP64", datatype="FP64", shape=[1])
    mixed.raw_input_contents.append(np.ones(1).tobytes())
    assert "contents field must not be specified when using raw_input_contents for 'IN_FP32'" in rpc_error(stub.ModelInfer, mixed).details()
    count = _typed_request(IN_FP32=("FP32", [3], "fp32_contents", [1.0]))
    assert "input byte size mismatch for input 'IN_FP32' for model 'echo'. Expected 12, got 4" in rpc_error(stub.ModelInfer, count).details()
    missing = theirs.ModelInferRequest(model_name="echo")
    missing.inputs.add(name="IN_FP32", datatype="FP32", shape=[1])
    err = rpc_error(stub.ModelInfer, missing)
    assert "unable to find data for input tensor 'IN_FP32' for model 'echo' in request." in err.details()


def test_raw_size_mismatch_and_bad_shapes(stub: Any) -> None:
    req = theirs.ModelInferRequest(model_name="identity_py")
    req.inputs.add(name="INPUT0", datatype="FP32", shape=[4])
    req.raw_input_contents.append(b"\0" * 12)
    err = rpc_error(stub.ModelInfer, req)
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "[request id: <id_unknown>] input byte size "
                                           "mismatch for input 'INPUT0' for model 'identity_py'. Expected 16, got 12")
    req.inputs[0].shape[:] = [-4]
    assert rpc_error(stub.ModelInfer, req).code() == grpc.StatusCode.INVALID_ARGUMENT
    # Triton checks the shape before the data's size: [3] with 12 bytes is a shape error
    req.inputs[0].shape[:] = [3]
    req.id = "r7"
    assert rpc_error(stub.ModelInfer, req).details() == (
        "[request id: r7] unexpected shape for input 'INPUT0' for model 'identity_py'. Expected [4], got [3]. ")
    req.inputs[0].shape[:] = [4]
    req.inputs[0].datatype = "FLOAT"
    assert rpc_error(stub.ModelInfer, req).details() == (
        "[request id: r7] inference input 'INPUT0' data-type is '<invalid>', but model 'identity_py' expects 'FP32'")


# ---- classification ----------------------------------------------------------------------------------------
def test_classification(client: grpcclient.InferenceServerClient) -> None:
    a = np.arange(32, dtype=np.float32).reshape(2, 16)
    b = np.zeros((2, 16), np.float32)
    inputs = [_input("INPUT0", a, "FP32"), _input("INPUT1", b, "FP32")]
    outputs = [grpcclient.InferRequestedOutput("OUTPUT0", class_count=2), grpcclient.InferRequestedOutput("OUTPUT1")]
    result = client.infer("add_sub_onnx", inputs, outputs=outputs)
    assert result.get_output("OUTPUT0").datatype == "BYTES" and list(result.get_output("OUTPUT0").shape) == [2, 2]
    assert result.as_numpy("OUTPUT0").tolist() == [[b"15.000000:15", b"14.000000:14"], [b"31.000000:15", b"30.000000:14"]]
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a)
    labelled = client.infer("labelled", inputs, outputs=[grpcclient.InferRequestedOutput("OUTPUT0", class_count=1)])
    assert labelled.as_numpy("OUTPUT0").tolist() == [[b"15.000000:15:label15"], [b"31.000000:15:label15"]]


def test_classification_parameter_errors(stub: Any) -> None:
    req = theirs.ModelInferRequest(model_name="identity_py")
    req.inputs.add(name="INPUT0", datatype="FP32", shape=[4])
    req.raw_input_contents.append(b"\0" * 16)
    out = req.outputs.add(name="OUTPUT0")
    out.parameters["classification"].string_param = "2"
    assert "invalid value type for 'classification' parameter, expected int64_param" in rpc_error(stub.ModelInfer, req).details()
    out.parameters["classification"].int64_param = 0
    assert rpc_error(stub.ModelInfer, req).details() == "invalid value for 'classification' parameter, expected >= 0"  # sic
    out.parameters["classification"].int64_param = 1
    out.parameters["shared_memory_region"].string_param = "r"
    out.parameters["shared_memory_byte_size"].int64_param = 16
    assert "output can't set both 'shared_memory_region' and 'classification'" in rpc_error(stub.ModelInfer, req).details()


# ---- shared memory inputs and outputs ----------------------------------------------------------------------
def test_shared_memory_inputs_and_outputs(client: grpcclient.InferenceServerClient) -> None:
    a = np.arange(16, dtype=np.float32).reshape(1, 16)
    b = np.full((1, 16), 2, np.float32)
    nbytes = a.nbytes
    h_in = shm.create_shared_memory_region("tl_in", "/tl_grpc_in", 2 * nbytes)
    h_out = shm.create_shared_memory_region("tl_out", "/tl_grpc_out", 2 * nbytes + 8)
    try:
        shm.set_shared_memory_region(h_in, [a, b])
        client.register_system_shared_memory("tl_in", "/tl_grpc_in", 2 * nbytes)
        client.register_system_shared_memory("tl_out", "/tl_grpc_out", 2 * nbytes + 8)
        in0, in1 = grpcclient.InferInput("INPUT0", [1, 16], "FP32"), grpcclient.InferInput("INPUT1", [1, 16], "FP32")
        in0.set_shared_memory("tl_in", nbytes)
        in1.set_shared_memory("tl_in", nbytes, offset=nbytes)
        out0, out1 = grpcclient.InferRequestedOutput("OUTPUT0"), grpcclient.InferRequestedOutput("OUTPUT1")
        out0.set_shared_memory("tl_out", nbytes, offset=8)
        out1.set_shared_memory("tl_out", nbytes, offset=8 + nbytes)
        result = client.infer("add_sub_onnx", [in0, in1], outputs=[out0, out1])
        resp = result.get_response()
        assert [o.name for o in resp.outputs] == ["OUTPUT0", "OUTPUT1"] and list(resp.raw_output_contents) == [b"", b""]
        assert list(resp.outputs[0].shape) == [1, 16] and resp.outputs[0].datatype == "FP32"
        got0 = shm.get_contents_as_numpy(h_out, np.float32, [1, 16], offset=8)
        got1 = shm.get_contents_as_numpy(h_out, np.float32, [1, 16], offset=8 + nbytes)
        np.testing.assert_array_equal(got0, a + b)
        np.testing.assert_array_equal(got1, a - b)

        small = grpcclient.InferRequestedOutput("OUTPUT0")
        small.set_shared_memory("tl_out", 8)
        err = client_error(client.infer, "add_sub_onnx", [in0, in1], outputs=[small])
        assert "should be at least 64 bytes to hold the results" in err.message()
        ghost = grpcclient.InferInput("INPUT0", [1, 16], "FP32")
        ghost.set_shared_memory("ghost_region", nbytes)
        err = client_error(client.infer, "add_sub_onnx", [ghost, in1])
        assert err.status() == "StatusCode.NOT_FOUND" and "Unable to find shared memory region: 'ghost_region'" in err.message()
        beyond = grpcclient.InferInput("INPUT0", [1, 16], "FP32")
        beyond.set_shared_memory("tl_in", nbytes, offset=4 * nbytes)
        assert "Invalid offset for shared memory region: 'tl_in'" in client_error(client.infer, "add_sub_onnx", [beyond, in1]).message()
    finally:
        client.unregister_system_shared_memory()
        shm.destroy_shared_memory_region(h_in)
        shm.destroy_shared_memory_region(h_out)


def test_shared_memory_parameter_errors(stub: Any) -> None:
    req = theirs.ModelInferRequest(model_name="identity_py")
    t = req.inputs.add(name="INPUT0", datatype="FP32", shape=[4])
    t.parameters["shared_memory_byte_size"].int64_param = 16
    assert "'shared_memory_byte_size' can not be specified without 'shared_memory_region'" in rpc_error(stub.ModelInfer, req).details()
    t.parameters["shared_memory_region"].int64_param = 1
    assert "invalid value type for 'shared_memory_region' parameter for tensor 'INPUT0', expected string_param." in rpc_error(stub.ModelInfer, req).details()
    del t.parameters["shared_memory_byte_size"]
    t.parameters["shared_memory_region"].string_param = "r"
    assert "'shared_memory_byte_size' must be specified along with 'shared_memory_region'" in rpc_error(stub.ModelInfer, req).details()
    t.parameters["shared_memory_byte_size"].int64_param = 16
    t.contents.fp32_contents.extend([0, 0, 0, 0])
    assert "unexpected 'content' provided when using shared memory for input tensor 'INPUT0'" in rpc_error(stub.ModelInfer, req).details()


# ---- parameters, sequences, priority, timeout --------------------------------------------------------------
def _text(client: grpcclient.InferenceServerClient, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    inp = _input("INPUT0", np.array([b"x"], dtype=object), "BYTES")
    result = client.infer("params_py", [inp], **kwargs)
    return json.loads(result.as_numpy("OUTPUT0")[0]), result.get_response()


def test_custom_parameters_reach_the_model_and_response_parameters_come_back(client: grpcclient.InferenceServerClient) -> None:
    seen, resp = _text(client, parameters={"temperature": 0.25, "top_k": 5, "greedy": True, "style": "terse"})
    assert seen["params"] == {"temperature": 0.25, "top_k": 5, "greedy": True, "style": "terse"}
    params = resp.parameters
    assert params["echo_int"].int64_param == 7 and params["echo_str"].string_param == "seven"
    assert params["echo_bool"].bool_param is True
    seen, _ = _text(client, priority=2, timeout=5_000_000)  # schedule-policy keys are not custom parameters
    assert seen["params"] == {}


def test_parameter_errors(stub: Any) -> None:
    def request(**params: Any) -> Any:
        req = theirs.ModelInferRequest(model_name="identity_py")
        req.inputs.add(name="INPUT0", datatype="FP32", shape=[4])
        req.raw_input_contents.append(b"\0" * 16)
        for key, (kind, value) in params.items():
            setattr(req.parameters[key], kind, value)
        return req

    cases = {
        "triton_secret": (("bool_param", True), "parameter keys starting with 'triton_' are reserved"),
        "sequence_id": (("bool_param", True), "invalid value type for 'sequence_id' parameter, expected int64_param or string_param."),
        "sequence_start": (("int64_param", 1), "invalid value type for 'sequence_start' parameter, expected bool_param."),
        "priority": (("int64_param", -1), "invalid value for 'priority', expected value >= 0."),
        "timeout": (("string_param", "soon"), "invalid value type for 'timeout' parameter, expected int64_param."),
        "custom": (("uint64_param", 3), "invalid value type for 'custom' parameter"),
    }
    for key, (param, message) in cases.items():
        err = rpc_error(stub.ModelInfer, request(**{key: param}))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, key
        assert message in err.details(), key
    ok = request(priority=("uint64_param", 1), timeout=("int64_param", 1000))
    assert stub.ModelInfer(ok).model_name == "identity_py"
    # a negative int64 sequence id is Triton's uint64 correlation id with the same bits
    neg = theirs.ModelInferRequest(model_name="params_py", raw_input_contents=[b"\x01\x00\x00\x00x"])
    neg.inputs.add(name="INPUT0", datatype="BYTES", shape=[1])
    neg.parameters["sequence_id"].int64_param = -5
    neg.parameters["sequence_start"].bool_param = True
    seen = json.loads(grpcclient.InferResult(stub.ModelInfer(neg)).as_numpy("OUTPUT0")[0])
    assert seen["corrid"] == 2**64 - 5 and seen["flags"] == 1


def test_sequences_with_uint64_and_string_ids(client: grpcclient.InferenceServerClient) -> None:
    def step(model: str, seq: Any, value: int, start: bool = False, end: bool = False) -> int:
        inp = _input("INPUT", np.array([value], np.int32), "INT32")
        result = client.infer(model, [inp], sequence_id=seq, sequence_start=start, sequence_end=end)
        return int(result.as_numpy("OUTPUT")[0])

    big = 2**62 + 5
    assert step("seq_u64", big, 1, start=True) == 1
    assert step("seq_u64", 7, 10, start=True) == 10
    assert step("seq_u64", big, 2) == 3
    assert step("seq_u64", 7, 5, end=True) == 15
    assert step("seq_u64", big, 3, end=True) == 6
    assert step("seq_str", "user-a", 4, start=True) == 4
    assert step("seq_str", "user-a", 4, end=True) == 8
    seen, _ = _text(client, sequence_id=2**62)  # params_py does not batch sequences: the id just passes through
    assert seen["corrid"] == 2**62 and seen["flags"] == 0
    err = client_error(step, "seq_u64", 12345, 1)
    assert err.status() == "StatusCode.INVALID_ARGUMENT" and "START" in err.message()
    err = client_error(step, "seq_u64", "text-id", 1, True)
    assert err.status() == "StatusCode.INVALID_ARGUMENT"


# ---- errors ------------------------------------------------------------------------------------------------
def test_inference_errors_map_to_triton_status_codes(client: grpcclient.InferenceServerClient) -> None:
    x = np.ones(4, np.float32)
    err = client_error(client.infer, "ghost", [_input("INPUT0", x, "FP32")])
    assert err.status() == "StatusCode.NOT_FOUND" and err.message() == "Request for unknown model: 'ghost' is not found"
    assert client_error(_identity, client, x, model_version="3").status() == "StatusCode.NOT_FOUND"
    err = client_error(_identity, client, x, model_version="v1")
    assert err.status() == "StatusCode.INVALID_ARGUMENT" and "failed to get model version" in err.message()
    err = client_error(_identity, client, np.ones(5, np.float32))
    assert err.status() == "StatusCode.INVALID_ARGUMENT" and "unexpected shape for input 'INPUT0'" in err.message()
    err = client_error(client.infer, "identity_py", [_input("INPUT0", np.ones(4, np.int32), "INT32")])
    assert "data-type is 'INT32', but model 'identity_py' expects 'FP32'" in err.message()
    err = client_error(client.infer, "raising_py", [_input("INPUT0", -x, "FP32")])
    assert err.status() == "StatusCode.INTERNAL" and "negative input is not allowed" in err.message()
    err = client_error(client.infer, "repeat", [_input("IN", np.ones(1, np.int32), "INT32")])
    assert err.status() == "StatusCode.UNIMPLEMENTED"
    assert err.message() == "ModelInfer RPC doesn't support models with decoupled transaction policy"
    err = client_error(_identity, client, x, outputs=[grpcclient.InferRequestedOutput("NOPE")])
    assert "unexpected inference output 'NOPE'" in err.message()


# ---- aio client, concurrency, cancellation -----------------------------------------------------------------
def test_aio_client_concurrent_requests(env: Env) -> None:
    async def main() -> list[np.ndarray]:
        async with aioclient.InferenceServerClient(env.url) as aio:
            assert await aio.is_server_ready()
            assert (await aio.get_model_metadata("identity_py")).name == "identity_py"

            async def one(i: int) -> np.ndarray:
                inp = aioclient.InferInput("INPUT0", [4], "FP32")
                inp.set_data_from_numpy(np.full(4, i, np.float32))
                return (await aio.infer("identity_py", [inp])).as_numpy("OUTPUT0")

            return await asyncio.gather(*(one(i) for i in range(32)))

    results = asyncio.run(main())
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r, np.full(4, i, np.float32))


def _wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.01)
    raise AssertionError(f"{path} was never written")


def test_deadline_cancels_the_request_in_the_model(env: Env, client: grpcclient.InferenceServerClient) -> None:
    marker = env.root / "slow_py" / "cancel_seen"
    marker.unlink(missing_ok=True)
    inp = _input("INPUT0", np.ones(4, np.float32), "FP32")
    err = client_error(client.infer, "slow_py", [inp], client_timeout=0.3)
    assert err.status() == "StatusCode.DEADLINE_EXCEEDED"
    assert _wait_for(marker) == "True"


def test_client_cancel_cancels_the_request(env: Env, client: grpcclient.InferenceServerClient) -> None:
    marker = env.root / "slow_py" / "cancel_seen"
    marker.unlink(missing_ok=True)
    outcome: list[Any] = []
    inp = _input("INPUT0", np.ones(4, np.float32), "FP32")
    ctx = client.async_infer("slow_py", [inp], callback=lambda result, error: outcome.append(error))
    time.sleep(0.2)
    ctx.cancel()
    assert _wait_for(marker) == "True"
    deadline = time.monotonic() + 5
    while not outcome and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outcome and outcome[0] is not None
    np.testing.assert_array_equal(_identity(client, np.ones(4, np.float32)).as_numpy("OUTPUT0"), np.ones(4))
