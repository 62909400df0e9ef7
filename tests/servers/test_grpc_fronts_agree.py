"""Both gRPC fronts (the native HTTP/2 one and grpcio's) answer every case with the same status, details and
message, and that answer is Triton 2.51's (each expected value below was checked against the tritonserver
binary of nvidia-pytriton 0.5 / Triton 2.51 with the same Python models).

Each case runs once per front over one engine; a case is (call, expected) where the call returns
``(status code name, details, response)`` and the expectation is compared whole, so two fronts that are
equally wrong fail too.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import grpc
import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")

from google.protobuf.json_format import MessageToDict  # noqa: E402
from tritonclient.grpc import service_pb2 as pb  # noqa: E402
from tritonclient.grpc import service_pb2_grpc as pb_grpc  # noqa: E402

from model_repos import ADD_SUB_PY, IDENTITY_PY, identity_py_config, write_model  # noqa: E402
from test_grpc_service import ECHO_PY, REPEAT_CFG, REPEAT_PY, _echo_config  # noqa: E402

from tritonlite import InferenceEngine  # noqa: E402
from tritonlite.grpc import GrpcServer  # noqa: E402

PAIR_CFG = """
name: "pair"
backend: "python"
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]
"""

FRONTS = ("native", "grpcio")
A = np.array([1, 2, 3, 4], np.float32)
B = np.ones(4, np.float32)


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("fronts") / "models"
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    write_model(root, "pair", PAIR_CFG, {"1/model.py": ADD_SUB_PY})
    write_model(root, "repeat", REPEAT_CFG.format(name="repeat"), {"1/model.py": REPEAT_PY})
    write_model(root, "echo", _echo_config(), {"1/model.py": ECHO_PY})
    with InferenceEngine(root, model_control_mode="explicit", startup_models=["*"]) as engine:
        servers = [GrpcServer(engine, "127.0.0.1", 0, allow_shm=True, frontend=f).start() for f in FRONTS]
        try:
            yield {f: f"127.0.0.1:{s.port}" for f, s in zip(FRONTS, servers)}
        finally:
            for s in servers:
                s.stop(grace=0)


# ---- calls ---------------------------------------------------------------------------------------------
Outcome = tuple[str, str, Any]


def unary(method: str, request: Any, **kwargs: Any) -> Callable[[str], Outcome]:
    def call(url: str) -> Outcome:
        with grpc.insecure_channel(url) as channel:
            try:
                resp = getattr(pb_grpc.GRPCInferenceServiceStub(channel), method)(request, timeout=20, **kwargs)
            except grpc.RpcError as exc:
                return exc.code().name, exc.details(), None
        return "OK", "", MessageToDict(resp, preserving_proto_field_name=True)
    return call


def raw(path: str, payload: bytes) -> Callable[[str], Outcome]:
    def call(url: str) -> Outcome:
        with grpc.insecure_channel(url) as channel:
            try:
                return "OK", "", channel.unary_unary(path)(payload, timeout=20)
            except grpc.RpcError as exc:
                return exc.code().name, exc.details(), None
    return call


def stream(requests: list[Any], metadata: Any = None) -> Callable[[str], Outcome]:
    def call(url: str) -> Outcome:
        with grpc.insecure_channel(url) as channel:
            method = channel.stream_stream("/inference.GRPCInferenceService/ModelStreamInfer",
                                           response_deserializer=pb.ModelStreamInferResponse.FromString)
            got: list[Any] = []
            try:
                messages = [r if isinstance(r, bytes) else r.SerializeToString() for r in requests]
                for r in method(iter(messages), timeout=20, metadata=metadata):
                    got.append(MessageToDict(r, preserving_proto_field_name=True))
            except grpc.RpcError as exc:
                return exc.code().name, exc.details(), got
        return "OK", "", got
    return call


def infer_request(model: str = "pair", rid: str = "", **tensors: tuple[str, list[int], bytes]) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name=model, id=rid)
    for name, (datatype, shape, data) in (tensors or {"INPUT0": ("FP32", [4], A.tobytes()), "INPUT1": ("FP32", [4], B.tobytes())}).items():
        req.inputs.add(name=name, datatype=datatype, shape=shape)
        req.raw_input_contents.append(data)
    return req


def edited(req: pb.ModelInferRequest, edit: Callable[[pb.ModelInferRequest], Any]) -> pb.ModelInferRequest:
    edit(req)
    return req


def repeat_request(values: list[int], rid: str) -> pb.ModelInferRequest:
    return infer_request("repeat", rid, IN=("INT32", [len(values)], np.array(values, np.int32).tobytes()))


def b64(array: np.ndarray) -> str:
    import base64

    return base64.b64encode(array.tobytes()).decode()


def bytes_tensor(*items: bytes) -> bytes:
    return b"".join(len(i).to_bytes(4, "little") + i for i in items)


PAIR_OK = {"model_name": "pair", "model_version": "1", "outputs": [
    {"name": "OUTPUT0", "datatype": "FP32", "shape": ["4"]}, {"name": "OUTPUT1", "datatype": "FP32", "shape": ["4"]}],
    "raw_output_contents": [b64(A + B), b64(A - B)]}
PREFIX = "[request id: <id_unknown>] "
BAD_VERSION = ("failed to get model version from specified version string 'abc' (details: stol), "
                        "version should be an integral value > 0")


def _repeat_response(rid: str, value: int, idx: int) -> dict[str, Any]:
    return {"infer_response": {"model_name": "repeat", "model_version": "1", "id": rid,
                               "parameters": {"triton_final_response": {"bool_param": False}},
                               "outputs": [{"name": "OUT", "datatype": "INT32", "shape": ["1"]},
                                           {"name": "IDX", "datatype": "UINT32", "shape": ["1"]}],
                               "raw_output_contents": [b64(np.array([value], np.int32)), b64(np.array([idx], np.uint32))]}}


CASES: dict[str, tuple[Callable[[str], Outcome], Outcome]] = {
    "live": (unary("ServerLive", pb.ServerLiveRequest()), ("OK", "", {"live": True})),
    "ready unknown model: false, not an error": (unary("ModelReady", pb.ModelReadyRequest(name="nope")), ("OK", "", {})),
    "ready unknown version": (unary("ModelReady", pb.ModelReadyRequest(name="pair", version="2")), ("OK", "", {})),
    "ready bad version": (unary("ModelReady", pb.ModelReadyRequest(name="pair", version="abc")),
                          ("INVALID_ARGUMENT", BAD_VERSION, None)),
    "metadata unknown": (unary("ModelMetadata", pb.ModelMetadataRequest(name="nope")),
                         ("NOT_FOUND", "Request for unknown model: 'nope' is not found", None)),
    "metadata unknown version": (unary("ModelMetadata", pb.ModelMetadataRequest(name="pair", version="9")),
                                 ("NOT_FOUND", "Request for unknown model: 'pair' version 9 is not found", None)),
    "infer": (unary("ModelInfer", infer_request()), ("OK", "", PAIR_OK)),
    "infer echoes the id": (unary("ModelInfer", infer_request(rid="my-id")), ("OK", "", {**PAIR_OK, "id": "my-id"})),
    "infer gzip": (unary("ModelInfer", infer_request(), compression=grpc.Compression.Gzip), ("OK", "", PAIR_OK)),
    "infer deflate": (unary("ModelInfer", infer_request(), compression=grpc.Compression.Deflate), ("OK", "", PAIR_OK)),
    "infer metadata headers": (unary("ModelInfer", infer_request(), metadata=(("x-custom", "1"), ("x-bin-bin", b"\0\1"))),
                               ("OK", "", PAIR_OK)),
    "infer one output": (unary("ModelInfer", edited(infer_request(), lambda r: r.outputs.add(name="OUTPUT1"))),
                         ("OK", "", {**PAIR_OK, "outputs": PAIR_OK["outputs"][1:], "raw_output_contents": [b64(A - B)]})),
    "infer classification": (
        unary("ModelInfer", edited(infer_request(), lambda r: setattr(r.outputs.add(name="OUTPUT0").parameters["classification"], "int64_param", 2))),
        ("OK", "", {**PAIR_OK, "outputs": [{"name": "OUTPUT0", "datatype": "BYTES", "shape": ["2"]}],
                    "raw_output_contents": [b64(np.frombuffer(bytes_tensor(b"5.000000:3", b"4.000000:2"), np.uint8))]})),
    "infer classification 0": (
        unary("ModelInfer", edited(infer_request(), lambda r: setattr(r.outputs.add(name="OUTPUT0").parameters["classification"], "int64_param", 0))),
        ("INVALID_ARGUMENT", "invalid value for 'classification' parameter, expected >= 0", None)),
    "infer BYTES": (
        unary("ModelInfer", infer_request("echo", IN_STRING=("BYTES", [3], bytes_tensor(b"a", b"", b"hello")))),
        ("OK", "", {"model_name": "echo", "model_version": "1", "outputs": [{"name": "OUT_STRING", "datatype": "BYTES", "shape": ["3"]}],
                    "raw_output_contents": [b64(np.frombuffer(bytes_tensor(b"a", b"", b"hello"), np.uint8))]})),
    "infer BYTES count": (
        unary("ModelInfer", infer_request("echo", IN_STRING=("BYTES", [2], bytes_tensor(b"a")))),
        ("INVALID_ARGUMENT", PREFIX + "expected 2 string elements for inference input 'IN_STRING' for model 'echo', got 1", None)),
    "infer BYTES truncated": (
        unary("ModelInfer", infer_request("echo", IN_STRING=("BYTES", [2], b"\1\0\0\0a\5\0\0\0b"))),
        ("INVALID_ARGUMENT", "incomplete string data for inference input 'IN_STRING', expecting string of length 5 but only 1 bytes available", None)),
    "infer unknown model": (unary("ModelInfer", infer_request("nope")),
                            ("NOT_FOUND", "Request for unknown model: 'nope' is not found", None)),
    "infer bad version": (unary("ModelInfer", edited(infer_request(), lambda r: setattr(r, "model_version", "abc"))),
                          ("INVALID_ARGUMENT", BAD_VERSION, None)),
    "infer decoupled": (unary("ModelInfer", repeat_request([1], "")),
                        ("UNIMPLEMENTED", "ModelInfer RPC doesn't support models with decoupled transaction policy", None)),
    "infer wrong datatype": (unary("ModelInfer", edited(infer_request(), lambda r: setattr(r.inputs[0], "datatype", "INT32"))),
                             ("INVALID_ARGUMENT", PREFIX + "inference input 'INPUT0' data-type is 'INT32', but model 'pair' expects 'FP32'", None)),
    "infer unknown datatype": (unary("ModelInfer", edited(infer_request(), lambda r: setattr(r.inputs[0], "datatype", "FLOAT"))),
                               ("INVALID_ARGUMENT", PREFIX + "inference input 'INPUT0' data-type is '<invalid>', but model 'pair' expects 'FP32'", None)),
    "infer wrong shape, before the byte size": (
        unary("ModelInfer", edited(infer_request(), lambda r: r.inputs[0].shape.__setitem__(0, 2))),
        ("INVALID_ARGUMENT", PREFIX + "unexpected shape for input 'INPUT0' for model 'pair'. Expected [4], got [2]. ", None)),
    "infer wrong name": (unary("ModelInfer", edited(infer_request(), lambda r: setattr(r.inputs[0], "name", "BOGUS"))),
                         ("INVALID_ARGUMENT", "unexpected inference input 'BOGUS' for model 'pair'", None)),
    "infer missing input": (
        unary("ModelInfer", infer_request(INPUT0=("FP32", [4], A.tobytes()))),
        ("INVALID_ARGUMENT", PREFIX + "expected 2 inputs but got 1 inputs for model 'pair'. Got input(s) ['INPUT0'], but missing "
         "required input(s) ['INPUT1']. Please provide all required input(s).", None)),
    "infer extra input": (
        unary("ModelInfer", infer_request(INPUT0=("FP32", [4], A.tobytes()), INPUT1=("FP32", [4], B.tobytes()), EXTRA=("FP32", [4], B.tobytes()))),
        ("INVALID_ARGUMENT", PREFIX + "expected 2 inputs but got 3 inputs for model 'pair'. Got input(s) ['EXTRA','INPUT1','INPUT0'], "
         "but missing required input(s) ]. Please provide all required input(s).", None)),
    "infer duplicate input": (unary("ModelInfer", edited(infer_request(), lambda r: setattr(r.inputs[1], "name", "INPUT0"))),
                              ("INVALID_ARGUMENT", PREFIX + "input 'INPUT0' already exists in request", None)),
    "infer raw size": (
        unary("ModelInfer", edited(infer_request(rid="r1"), lambda r: r.raw_input_contents.__setitem__(0, b"\0" * 12))),
        ("INVALID_ARGUMENT", "[request id: r1] input byte size mismatch for input 'INPUT0' for model 'pair'. Expected 16, got 12", None)),
    "infer contents and raw": (
        unary("ModelInfer", edited(infer_request(), lambda r: r.inputs[0].contents.fp32_contents.extend([1.0] * 4))),
        ("INVALID_ARGUMENT", "contents field must not be specified when using raw_input_contents for 'INPUT0' for model 'pair'", None)),
    "infer unknown output": (unary("ModelInfer", edited(infer_request(), lambda r: r.outputs.add(name="NOPE"))),
                             ("INVALID_ARGUMENT", "unexpected inference output 'NOPE' for model 'pair'", None)),
    "malformed message": (raw("/inference.GRPCInferenceService/ModelInfer", b"\xff\xff\xff\xff"),
                          ("INTERNAL", "Unable to parse request", None)),
    "malformed metadata request": (raw("/inference.GRPCInferenceService/ModelMetadata", b"\x0a"),
                                   ("INTERNAL", "Unable to parse request", None)),
    "unknown method": (raw("/inference.GRPCInferenceService/Nope", b""), ("UNIMPLEMENTED", "", None)),
    "unknown service": (raw("/foo.Bar/Baz", b""), ("UNIMPLEMENTED", "", None)),
    "health check": (raw("/grpc.health.v1.Health/Check", b""), ("OK", "", b"\x08\x01")),
    "trace setting of an unknown model": (unary("TraceSetting", pb.TraceSettingRequest(model_name="nope")),
                                          ("INVALID_ARGUMENT", "Request for unknown model : nope", None)),
    "log format": (unary("LogSettings", edited(pb.LogSettingsRequest(), lambda r: setattr(r.settings["log_format"], "string_param", "xml"))),
                   ("INVALID_ARGUMENT", "invalid argument for log_format, got: xml", None)),
    "stream decoupled": (stream([repeat_request([5, 6], "s1")]), ("OK", "", [_repeat_response("s1", 5, 0), _repeat_response("s1", 6, 1)])),
    "stream: an unknown model is answered in-stream, even in triton_grpc_error mode": (
        stream([infer_request("nope", "u1"), repeat_request([7], "ok")], metadata=(("triton_grpc_error", "true"),)),
        ("OK", "", [{"error_message": "Request for unknown model: 'nope' is not found", "infer_response": {"id": "u1"}},
                    _repeat_response("ok", 7, 0)])),
    "stream: a model's error ends the call in triton_grpc_error mode": (
        stream([repeat_request([-1], "e1")], metadata=(("triton_grpc_error", "true"),)),
        ("INTERNAL", "negative value at 0", [])),
    "stream: a validation error carries only the id": (
        stream([edited(infer_request(rid="v1"), lambda r: r.raw_input_contents.__setitem__(0, b"\0" * 12))]),
        ("OK", "", [{"error_message": "[request id: v1] input byte size mismatch for input 'INPUT0' for model 'pair'. Expected 16, got 12",
                     "infer_response": {"id": "v1"}}])),
    "stream: a malformed message ends the input": (
        stream([b"\xff\xff\xff\xff", infer_request(rid="after")]), ("OK", "", [])),
}


@pytest.mark.parametrize("name", list(CASES))
def test_both_fronts_answer_like_triton(urls: dict[str, str], name: str) -> None:
    call, expected = CASES[name]
    got = {front: call(url) for front, url in urls.items()}
    assert got["native"] == got["grpcio"], f"the fronts differ on {name!r}"
    assert got["native"] == expected


def test_tritonclient_compression_round_trips_on_both_fronts(urls: dict[str, str]) -> None:
    """tritonclient's ``compression_algorithm``: the request travels gzip-compressed, the answer is the same."""
    import tritonclient.grpc as grpcclient

    for url in urls.values():
        client = grpcclient.InferenceServerClient(url)
        try:
            inputs = [grpcclient.InferInput("INPUT0", [4], "FP32"), grpcclient.InferInput("INPUT1", [4], "FP32")]
            inputs[0].set_data_from_numpy(A)
            inputs[1].set_data_from_numpy(B)
            for algorithm in ("gzip", "deflate"):
                result = client.infer("pair", inputs, request_id=algorithm, compression_algorithm=algorithm)
                assert result.get_response().id == algorithm
                np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), A + B)
        finally:
            client.close()


def test_a_failed_load_of_an_unknown_model_leaves_no_index_entry(urls: dict[str, str]) -> None:
    """Triton keeps no state for a model that is in no repository: its index does not list it afterwards."""
    for url in urls.values():
        load = unary("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="ghost"))(url)
        assert load == ("INTERNAL", "failed to load 'ghost', failed to poll from model repository", None)
        code, _, index = unary("RepositoryIndex", pb.RepositoryIndexRequest())(url)
        assert code == "OK" and [(m["name"], m["state"]) for m in index["models"]] == [
            ("echo", "READY"), ("identity_py", "READY"), ("pair", "READY"), ("repeat", "READY")]
