"""The gRPC door with the real ``tritonclient.grpc``: protos, health, metadata, config, statistics,
repository, settings, shared memory registration and protocol errors (malformed protobuf included).

This module also holds the repository builder and the server fixture the other ``test_grpc_*``
modules import.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import grpc
import numpy as np
import pytest

tritonclient_grpc = pytest.importorskip("tritonclient.grpc")

import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.utils.shared_memory as shm  # noqa: E402
from tritonclient.grpc import service_pb2 as theirs  # noqa: E402
from tritonclient.grpc import service_pb2_grpc as theirs_grpc  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from tritonlite import InferenceEngine  # noqa: E402
from tritonlite.protocol.shm import SHM_DISABLED  # noqa: E402
from tritonlite.grpc import GrpcServer  # noqa: E402
from tritonlite.protos import grpc_service_pb2 as ours  # noqa: E402
from tritonlite.protos import grpc_service_pb2_grpc as ours_grpc  # noqa: E402
from tritonlite.protos import model_config_pb2  # noqa: E402

from model_repos import IDENTITY_PY, RAISING_PY, add_onnx_model, identity_py_config, onnx_models, write_model  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

# ---- models shared by the gRPC test modules ---------------------------------------------------------
REPEAT_CFG = """
name: "{name}"
backend: "python"
model_transaction_policy {{ decoupled: true }}
input [ {{ name: "IN" data_type: TYPE_INT32 dims: [ -1 ] }} ]
output [ {{ name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] }}, {{ name: "IDX" data_type: TYPE_UINT32 dims: [ 1 ] }} ]
"""

# one response per value; -1: error with FINAL; -2: error without FINAL (the stream goes on);
# 999: wait until cancelled, record it in the model directory, then send FINAL alone
REPEAT_PY = """
import threading, time
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy().copy()
            threading.Thread(target=self._send, args=(request, values), daemon=True).start()
        return None

    def _send(self, request, values):
        sender = request.get_response_sender()
        for idx, value in enumerate(values):
            if value == -1:
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"negative value at {idx}")),
                            flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return
            if value == -2:
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"soft error at {idx}")))
                continue
            if value == 999:
                deadline = time.monotonic() + 10
                while not request.is_cancelled() and time.monotonic() < deadline:
                    time.sleep(0.002)
                with open(pb_utils.get_model_dir() + "/cancel_seen", "w") as fh:
                    fh.write(str(request.is_cancelled()))
                sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return
            if value >= 100:
                time.sleep(value / 10000.0)
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([value], np.int32)),
                                                    pb_utils.Tensor("IDX", np.array([idx], np.uint32))]))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
"""

# identity over any input set: OUT_x = IN_x; BF16 goes through DLPack as pb_utils requires
ECHO_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            tensors = []
            for t in r.inputs():
                name = "OUT" + t.name()[2:]
                if t.name().endswith("BF16"):
                    tensors.append(pb_utils.Tensor.from_dlpack(name, t.to_dlpack()))
                else:
                    tensors.append(pb_utils.Tensor(name, t.as_numpy()))
            out.append(pb_utils.InferenceResponse(tensors))
        return out
"""
ECHO_TYPES = ("BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64", "STRING", "BF16")


def _echo_config() -> str:
    inputs = ", ".join(f'{{ name: "IN_{t}" data_type: TYPE_{t} dims: [ -1 ] optional: true }}' for t in ECHO_TYPES)
    outputs = ", ".join(f'{{ name: "OUT_{t}" data_type: TYPE_{t} dims: [ -1 ] }}' for t in ECHO_TYPES)
    return f'name: "echo"\nbackend: "python"\nmax_batch_size: 0\ninput [ {inputs} ]\noutput [ {outputs} ]\n'


# request parameters come back as a JSON string output, and as response parameters
PARAMS_PY = """
import json
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            params = json.loads(r.parameters())
            text = json.dumps({"params": params, "corrid": r.correlation_id(), "flags": r.flags()}, sort_keys=True)
            out.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor("OUTPUT0", np.array([text.encode()], dtype=object))],
                parameters={"echo_int": 7, "echo_str": "seven", "echo_bool": True}))
        return out
"""

# waits until cancelled (or 10 s), records what it saw in the model directory
SLOW_PY = """
import time
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        r = requests[0]
        deadline = time.monotonic() + 10
        while not r.is_cancelled() and time.monotonic() < deadline:
            time.sleep(0.002)
        with open(pb_utils.get_model_dir() + "/cancel_seen", "w") as fh:
            fh.write(str(r.is_cancelled()))
        x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)])]
"""

# sequence accumulator: OUTPUT = running sum of INPUT per correlation id, restarted on START
SEQ_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.totals = {}

    def execute(self, requests):
        out = []
        for r in requests:
            start = int(pb_utils.get_input_tensor_by_name(r, "START").as_numpy().reshape(-1)[0])
            x = int(pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy().reshape(-1)[0])
            key = r.correlation_id()
            total = (0 if start else self.totals.get(key, 0)) + x
            self.totals[key] = total
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT", np.array([total], np.int32))]))
        return out
"""
SEQ_CFG = """
name: "{name}"
backend: "python"
max_batch_size: 0
sequence_batching {{
  max_sequence_idle_microseconds: 5000000
  control_input [
    {{ name: "START" control [ {{ kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] }} ] }},
    {{ name: "CORRID" control [ {{ kind: CONTROL_SEQUENCE_CORRID data_type: {corrid} }} ] }}
  ]
}}
input [ {{ name: "INPUT" data_type: TYPE_INT32 dims: [ 1 ] }} ]
output [ {{ name: "OUTPUT" data_type: TYPE_INT32 dims: [ 1 ] }} ]
instance_group [ {{ kind: KIND_CPU count: 2 }} ]
"""

ENSEMBLE_CFG = """
name: "ens_add_sub"
platform: "ensemble"
max_batch_size: 8
input [ { name: "A" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "B" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "SUM" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "DIFF" data_type: TYPE_FP32 dims: [ 16 ] } ]
ensemble_scheduling { step [ {
  model_name: "add_sub_onnx" model_version: -1
  input_map { key: "INPUT0" value: "A" } input_map { key: "INPUT1" value: "B" }
  output_map { key: "OUTPUT0" value: "SUM" } output_map { key: "OUTPUT1" value: "DIFF" }
} ] }
"""

LABELLED_CFG = """
name: "labelled"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] label_filename: "labels.txt" },
         { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
"""


def build_repository(root: Path, *, full: bool = True) -> Path:
    """ONNX, Python, decoupled, sequence and ensemble models (``full=False``: the streaming subset)."""
    add_onnx_model(root)
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    write_model(root, "repeat", REPEAT_CFG.format(name="repeat"), {"1/model.py": REPEAT_PY})
    write_model(root, "seq_str", SEQ_CFG.format(name="seq_str", corrid="TYPE_STRING"), {"1/model.py": SEQ_PY})
    write_model(root, "raising_py", identity_py_config("raising_py"), {"1/model.py": RAISING_PY})
    if not full:
        return root
    write_model(root, "echo", _echo_config(), {"1/model.py": ECHO_PY})
    write_model(root, "params_py", identity_py_config("params_py", dims="[ 1 ]", dtype="TYPE_STRING"), {"1/model.py": PARAMS_PY})
    write_model(root, "slow_py", identity_py_config("slow_py"), {"1/model.py": SLOW_PY})
    write_model(root, "seq_u64", SEQ_CFG.format(name="seq_u64", corrid="TYPE_UINT64"), {"1/model.py": SEQ_PY})
    write_model(root, "ens_add_sub", ENSEMBLE_CFG, {"1/.keep": ""})
    labelled = write_model(root, "labelled", LABELLED_CFG, {"labels.txt": "".join(f"label{i}\n" for i in range(16))})
    onnx_models.add_sub(labelled / "1" / "model.onnx")
    write_model(root, "unload_me", identity_py_config("unload_me"), {"1/model.py": IDENTITY_PY})
    write_model(root, "versioned", identity_py_config("versioned"), {"1/model.py": IDENTITY_PY})
    return root


class Env:
    """A running server over a repository, with a connected tritonclient."""

    def __init__(self, root: Path, *, allow_shm: bool = True) -> None:
        self.root = root
        self.engine = InferenceEngine(root, model_control_mode="explicit", startup_models=["*"])
        self.server = GrpcServer(self.engine, "127.0.0.1", 0, allow_shm=allow_shm).start()
        self.url = f"127.0.0.1:{self.server.port}"
        self.client = grpcclient.InferenceServerClient(self.url)

    def close(self) -> None:
        self.client.close()
        self.server.stop(grace=0)
        self.engine.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(build_repository(tmp_path_factory.mktemp("grpc") / "models"))
    yield e
    e.close()


@pytest.fixture
def client(env: Env) -> grpcclient.InferenceServerClient:
    return env.client


@pytest.fixture
def stub(env: Env) -> Iterator[Any]:
    """tritonclient's own generated stub on a raw channel (for requests tritonclient never builds)."""
    channel = grpc.insecure_channel(env.url)
    yield theirs_grpc.GRPCInferenceServiceStub(channel)
    channel.close()


def rpc_error(fn: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value


def client_error(fn: Any, *args: Any, **kwargs: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as info:
        fn(*args, **kwargs)
    return info.value


# ---- protos ----------------------------------------------------------------------------------------
def _shape(file: Any) -> dict[str, Any]:
    """Every message's fields (name, number, type, label, type name, oneof) and every RPC signature."""
    out: dict[str, Any] = {}

    def walk(msg: Any) -> None:
        out[msg.full_name] = sorted(
            (f.name, f.number, f.type, f.is_repeated, f.message_type.full_name if f.message_type else "",
             f.containing_oneof.name if f.containing_oneof else "")
            for f in msg.fields
        )
        for nested in msg.nested_types:
            walk(nested)

    for msg in file.message_types_by_name.values():
        walk(msg)
    for svc in file.services_by_name.values():
        out[svc.full_name] = sorted(
            (m.name, m.input_type.full_name, m.output_type.full_name, m.client_streaming, m.server_streaming) for m in svc.methods
        )
    return out


def test_service_proto_matches_tritonclient_field_for_field() -> None:
    assert _shape(ours.DESCRIPTOR) == _shape(theirs.DESCRIPTOR)
    assert len(ours.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods) == 20


def test_generated_modules_live_in_the_private_pool() -> None:
    from google.protobuf import descriptor_pool

    assert ours.DESCRIPTOR.pool is model_config_pb2.POOL
    assert ours.ModelInferRequest.DESCRIPTOR is not theirs.ModelInferRequest.DESCRIPTOR
    assert descriptor_pool.Default().FindMessageTypeByName("inference.ModelInferRequest") is theirs.ModelInferRequest.DESCRIPTOR
    text = (REPO / "tritonlite" / "protos" / "grpc_service_pb2_grpc.py").read_text()
    assert "from . import grpc_service_pb2" in text and "Default()" not in text
    # the two message families are wire-compatible
    msg = ours.ModelInferRequest(model_name="m", raw_input_contents=[b"\x01\x02"])
    msg.parameters["sequence_id"].int64_param = 5
    back = theirs.ModelInferRequest.FromString(msg.SerializeToString())
    assert back.model_name == "m" and back.parameters["sequence_id"].int64_param == 5


def test_import_order_ours_first_then_tritonclient() -> None:
    code = textwrap.dedent(
        """
        from tritonlite.protos import grpc_service_pb2, grpc_service_pb2_grpc
        from tritonlite.grpc import GrpcServer
        import tritonclient.grpc
        from tritonclient.grpc import service_pb2
        assert grpc_service_pb2.ModelInferRequest.DESCRIPTOR is not service_pb2.ModelInferRequest.DESCRIPTOR
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_our_generated_stub_talks_to_the_server(env: Env) -> None:
    with grpc.insecure_channel(env.url) as channel:
        stub = ours_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(ours.ServerLiveRequest()).live is True
        meta = stub.ModelMetadata(ours.ModelMetadataRequest(name="identity_py"))
        assert meta.platform == "python" and list(meta.inputs[0].shape) == [4]


# ---- health and metadata --------------------------------------------------------------------------------
def test_health(client: grpcclient.InferenceServerClient) -> None:
    assert client.is_server_live() is True
    assert client.is_server_ready() is True
    assert client.is_model_ready("identity_py") is True
    assert client.is_model_ready("identity_py", "1") is True


def test_model_ready_answers_like_triton(client: grpcclient.InferenceServerClient) -> None:
    # Triton 2.51 (checked against the binary): an unknown model or version is not ready, not an error;
    # only a version string that is not a number is
    assert client.is_model_ready("ghost") is False
    assert client.is_model_ready("identity_py", "7") is False
    err = client_error(client.is_model_ready, "identity_py", "abc")
    assert err.status() == "StatusCode.INVALID_ARGUMENT"
    assert err.message() == ("failed to get model version from specified version string 'abc' (details: stol), "
                             "version should be an integral value > 0")
    err = client_error(client.is_model_ready, "identity_py", "-1")
    assert err.message() == "invalid model version specified '-1' , version should be an integral value > 0"


def test_grpc_health_check(env: Env) -> None:
    with grpc.insecure_channel(env.url) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        assert check(b"") == b"\x08\x01"  # status: SERVING


def test_server_metadata(client: grpcclient.InferenceServerClient) -> None:
    meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "triton" and meta["version"]
    for ext in ("classification", "sequence", "model_repository", "model_repository(unload_dependents)", "schedule_policy",
                "model_configuration", "system_shared_memory", "cuda_shared_memory", "binary_tensor_data", "parameters",
                "statistics", "trace", "logging"):
        assert ext in meta["extensions"]


def test_model_metadata(client: grpcclient.InferenceServerClient) -> None:
    meta = client.get_model_metadata("add_sub_onnx", as_json=True)
    assert meta["name"] == "add_sub_onnx" and meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"][0] == {"name": "INPUT0", "datatype": "FP32", "shape": ["-1", "16"]}
    assert client.get_model_metadata("identity_py").platform == "python"
    assert client.get_model_metadata("ens_add_sub").platform == "ensemble"
    assert [o.datatype for o in client.get_model_metadata("params_py").outputs] == ["BYTES"]
    assert client.get_model_metadata("identity_py", "1").versions == ["1"]
    err = client_error(client.get_model_metadata, "ghost")
    assert err.status() == "StatusCode.NOT_FOUND"


def test_model_config(client: grpcclient.InferenceServerClient) -> None:
    cfg = client.get_model_config("add_sub_onnx").config
    assert cfg.name == "add_sub_onnx" and cfg.max_batch_size == 8 and cfg.platform == "onnxruntime_onnx"
    assert list(cfg.input[0].dims) == [16] and cfg.instance_group[0].count == 2
    as_json = client.get_model_config("repeat", as_json=True)["config"]
    assert as_json["model_transaction_policy"] == {"decoupled": True}
    seq = client.get_model_config("seq_str").config
    assert seq.sequence_batching.max_sequence_idle_microseconds == 5000000
    assert client_error(client.get_model_config, "ghost").status() == "StatusCode.NOT_FOUND"


def test_statistics(client: grpcclient.InferenceServerClient) -> None:
    inp = grpcclient.InferInput("INPUT0", [4], "FP32")
    inp.set_data_from_numpy(np.ones(4, np.float32))
    before = client.get_inference_statistics("identity_py").model_stats[0].inference_stats.success.count
    for _ in range(3):
        client.infer("identity_py", [inp])
    stats = client.get_inference_statistics("identity_py", "1").model_stats[0]
    assert stats.name == "identity_py" and stats.version == "1"
    assert stats.inference_stats.success.count == before + 3 and stats.inference_stats.queue.count == before + 3
    assert stats.inference_stats.compute_infer.ns > 0 and stats.last_inference > 0
    assert stats.batch_stats[0].batch_size == 1
    everything = client.get_inference_statistics(as_json=True)["model_stats"]
    assert {"identity_py", "add_sub_onnx", "repeat"} <= {s["name"] for s in everything}
    err = client_error(client.get_inference_statistics, "ghost")
    assert err.status() == "StatusCode.INVALID_ARGUMENT" and "requested model 'ghost' is not available" in err.message()


# ---- repository --------------------------------------------------------------------------------------------
def test_repository_index(client: grpcclient.InferenceServerClient, stub: Any) -> None:
    index = client.get_model_repository_index(as_json=True)["models"]
    names = {m["name"] for m in index}
    assert {"add_sub_onnx", "identity_py", "repeat", "ens_add_sub"} <= names
    entry = next(m for m in index if m["name"] == "add_sub_onnx")
    assert entry == {"name": "add_sub_onnx", "version": "1", "state": "READY"}
    ready = stub.RepositoryIndex(theirs.RepositoryIndexRequest(ready=True))
    assert all(m.state == "READY" for m in ready.models)
    err = rpc_error(stub.RepositoryIndex, theirs.RepositoryIndexRequest(repository_name="other"))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED and "'repository_name' specification is not supported" in err.details()


def test_unload_then_load(client: grpcclient.InferenceServerClient) -> None:
    client.unload_model("unload_me")
    assert client.is_model_ready("unload_me") is False
    index = {m.name: m for m in client.get_model_repository_index().models}
    assert index["unload_me"].state == "UNAVAILABLE" and index["unload_me"].reason == "unloaded"
    client.unload_model("never_loaded")  # a no-op, as in Triton
    client.load_model("unload_me")
    assert client.is_model_ready("unload_me") is True


def test_load_with_config_override_and_files(env: Env, client: grpcclient.InferenceServerClient) -> None:
    config = json.dumps({"name": "versioned", "backend": "python", "max_batch_size": 0,
                         "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [4]}],
                         "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]}],
                         "version_policy": {"specific": {"versions": [2]}}})
    client.load_model("versioned", config=config, files={"file:2/model.py": IDENTITY_PY.encode()})
    assert client.get_model_metadata("versioned").versions == ["2"]
    inp = grpcclient.InferInput("INPUT0", [4], "FP32")
    inp.set_data_from_numpy(np.arange(4, dtype=np.float32))
    assert client.infer("versioned", [inp]).get_response().model_version == "2"
    client.load_model("versioned")  # back to the repository's own files
    assert client.get_model_metadata("versioned").versions == ["1"]


def test_load_errors(client: grpcclient.InferenceServerClient, stub: Any) -> None:
    err = client_error(client.load_model, "versioned", config="{not json")  # Triton: the poll of the model fails
    assert err.status() == "StatusCode.INTERNAL"
    assert err.message().startswith("failed to load 'versioned', failed to poll from model repository: Invalid config override: ")
    assert client_error(client.load_model, "no_such_model").status() != "StatusCode.OK"
    req = theirs.RepositoryModelLoadRequest(model_name="versioned")
    req.parameters["config"].int64_param = 1
    err = rpc_error(stub.RepositoryModelLoad, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "invalid value type for load parameter 'config', expected string_param." in err.details()
    req = theirs.RepositoryModelLoadRequest(model_name="versioned")
    req.parameters["file:1/model.py"].string_param = "x"
    assert "expected bytes_param" in rpc_error(stub.RepositoryModelLoad, req).details()
    req = theirs.RepositoryModelLoadRequest(model_name="versioned")
    req.parameters["colour"].string_param = "blue"
    assert "unrecognized load parameter 'colour'." in rpc_error(stub.RepositoryModelLoad, req).details()
    err = rpc_error(stub.RepositoryModelLoad, theirs.RepositoryModelLoadRequest(repository_name="r", model_name="versioned"))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED
    req = theirs.RepositoryModelUnloadRequest(model_name="versioned")
    req.parameters["unload_dependents"].string_param = "yes"
    err = rpc_error(stub.RepositoryModelUnload, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "expected bool_param" in err.details()
    assert client.is_model_ready("versioned") is True


def test_load_refused_outside_explicit_mode(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(root) as engine, GrpcServer(engine) as server:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.port}")
        err = client_error(client.load_model, "identity_py")
        assert err.status() == "StatusCode.UNAVAILABLE" and "explicit model load / unload is not allowed" in err.message()
        err = client_error(client.register_system_shared_memory, "r", "/k", 8)
        assert err.status() == "StatusCode.UNIMPLEMENTED" and err.message() == SHM_DISABLED
        assert client.get_system_shared_memory_status().regions == {}
        client.close()


# ---- settings ----------------------------------------------------------------------------------------------
def test_log_settings(client: grpcclient.InferenceServerClient, stub: Any) -> None:
    current = client.get_log_settings(as_json=True)["settings"]
    assert current["log_info"] == {"bool_param": True} and current["log_format"] == {"string_param": "default"}
    updated = client.update_log_settings({"log_verbose_level": 2, "log_info": False}, as_json=True)["settings"]
    assert updated["log_verbose_level"] == {"uint32_param": 2} and updated["log_info"] == {"bool_param": False}
    client.update_log_settings({"log_verbose_level": 0, "log_info": True})
    req = theirs.LogSettingsRequest()
    req.settings["log_info"].string_param = "yes"
    err = rpc_error(stub.LogSettings, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "expect boolean for 'log_info'" in err.details()
    req = theirs.LogSettingsRequest()
    req.settings["log_file"].string_param = "/tmp/x.log"
    assert rpc_error(stub.LogSettings, req).code() == grpc.StatusCode.UNIMPLEMENTED
    req = theirs.LogSettingsRequest()
    req.settings["log_format"].string_param = "fancy"
    err = rpc_error(stub.LogSettings, req)
    assert (err.code(), err.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid argument for log_format, got: fancy")
    req = theirs.LogSettingsRequest()
    req.settings["log_verbose_level"].string_param = "1"
    assert rpc_error(stub.LogSettings, req).details() == "expect int32 for 'log_verbose_level'"
    req = theirs.LogSettingsRequest()  # Triton ignores keys it does not know
    req.settings["no_such_setting"].bool_param = True
    assert stub.LogSettings(req).settings["log_info"].bool_param is True


def test_trace_settings(client: grpcclient.InferenceServerClient, stub: Any) -> None:
    settings = client.get_trace_settings(as_json=True)["settings"]
    assert settings["trace_level"] == {"value": ["OFF"]} and settings["trace_rate"] == {"value": ["1000"]}
    updated = client.update_trace_settings("identity_py", {"trace_rate": "5", "trace_level": ["TIMESTAMPS"]}, as_json=True)
    assert updated["settings"]["trace_rate"] == {"value": ["5"]}
    assert updated["settings"]["trace_level"] == {"value": ["TIMESTAMPS"]}
    assert client.get_trace_settings(as_json=True)["settings"]["trace_rate"] == {"value": ["1000"]}
    cleared = client.update_trace_settings("identity_py", {"trace_rate": None}, as_json=True)["settings"]
    assert cleared["trace_rate"] == {"value": ["1000"]}
    err = client_error(client.update_trace_settings, settings={"trace_count": "-5"})
    assert (err.status(), err.message()) == ("StatusCode.INVALID_ARGUMENT", "Unable to parse 'trace_count'. Expecting value >= -1, got: -5")
    err = client_error(client.update_trace_settings, settings={"trace_rate": "abc"})
    assert err.message() == "Unable to parse 'trace_rate', got: abc"
    err = client_error(client.get_trace_settings, "ghost")
    assert (err.status(), err.message()) == ("StatusCode.INVALID_ARGUMENT", "Request for unknown model : ghost")
    # Triton ignores trace levels and keys it does not know
    same = client.update_trace_settings(settings={"trace_level": ["LOUD"], "no_such_setting": "1"}, as_json=True)["settings"]
    assert same["trace_level"] == {"value": ["OFF"]} and "no_such_setting" not in same
    err = client_error(client.update_trace_settings, settings={"trace_level": ["OFF", "TIMESTAMPS"]})
    assert err.message() == "Expect only one trace level 'OFF' is specified"
    req = theirs.TraceSettingRequest()
    req.settings["trace_rate"].value.extend(["1", "2"])
    assert "expect only 1 value for 'trace_rate'" in rpc_error(stub.TraceSetting, req).details()


# ---- shared memory registration ----------------------------------------------------------------------------
def test_system_shared_memory_registration(client: grpcclient.InferenceServerClient) -> None:
    handle = shm.create_shared_memory_region("grpc_reg", "/tl_grpc_reg", 64)
    try:
        client.register_system_shared_memory("grpc_reg", "/tl_grpc_reg", 32, offset=16)
        status = client.get_system_shared_memory_status("grpc_reg").regions["grpc_reg"]
        assert (status.name, status.key, status.offset, status.byte_size) == ("grpc_reg", "/tl_grpc_reg", 16, 32)
        assert "grpc_reg" in client.get_system_shared_memory_status(as_json=True)["regions"]
        err = client_error(client.register_system_shared_memory, "grpc_reg", "/tl_grpc_reg", 8)
        assert err.status() == "StatusCode.ALREADY_EXISTS" and "already in manager" in err.message()
        err = client_error(client.register_system_shared_memory, "too_big", "/tl_grpc_reg", 128)
        assert err.status() == "StatusCode.INVALID_ARGUMENT" and "invalid args" in err.message()
        assert client_error(client.register_system_shared_memory, "missing", "/tl_no_such_key", 8).status() != "StatusCode.OK"
        client.unregister_system_shared_memory("grpc_reg")
        err = client_error(client.get_system_shared_memory_status, "grpc_reg")
        assert err.status() == "StatusCode.NOT_FOUND" and "Unable to find system shared memory region: 'grpc_reg'" in err.message()
        client.unregister_system_shared_memory("grpc_reg")  # unknown: a no-op
        client.register_system_shared_memory("grpc_reg", "/tl_grpc_reg", 64)
        client.unregister_system_shared_memory()  # all of them
        assert client.get_system_shared_memory_status().regions == {}
    finally:
        shm.destroy_shared_memory_region(handle)


def test_cuda_shared_memory_without_a_gpu(client: grpcclient.InferenceServerClient, stub: Any) -> None:
    assert client.get_cuda_shared_memory_status().regions == {}
    req = theirs.CudaSharedMemoryRegisterRequest(name="gpu", raw_handle=b"\0" * 64, device_id=0, byte_size=16)
    try:
        stub.CudaSharedMemoryRegister(req)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "CUDA" in err.details()
    else:  # pragma: no cover - a machine with a GPU and cuda-python accepted the (bogus) handle
        pytest.fail("a zero IPC handle was accepted")
    bad = theirs.CudaSharedMemoryRegisterRequest(name="gpu", raw_handle=b"\0" * 3, byte_size=16)
    assert rpc_error(stub.CudaSharedMemoryRegister, bad).code() == grpc.StatusCode.INVALID_ARGUMENT
    client.unregister_cuda_shared_memory()


# ---- protocol errors ----------------------------------------------------------------------------------------
GARBAGE = b"\xff\xff\xff\xff\xff\x0f garbage"


@pytest.mark.parametrize("method", ["ModelInfer", "ServerLive", "ModelMetadata", "RepositoryModelLoad", "LogSettings"])
def test_malformed_protobuf_is_internal_like_triton(env: Env, method: str) -> None:
    with grpc.insecure_channel(env.url) as channel:
        call = channel.unary_unary(f"/inference.GRPCInferenceService/{method}")
        err = rpc_error(call, GARBAGE)
    # what Triton 2.51 answers (grpc++ fails to parse the message before the handler runs)
    assert (err.code(), err.details()) == (grpc.StatusCode.INTERNAL, "Unable to parse request")
    assert env.client.is_server_live()  # the server is unharmed


@pytest.mark.parametrize("path", ["/inference.GRPCInferenceService/NoSuchRpc", "/grpc.health.v1.Health/Watch", "/no.Such/Service"])
def test_unknown_rpc_is_unimplemented_without_a_message(env: Env, path: str) -> None:
    with grpc.insecure_channel(env.url) as channel:
        err = rpc_error(channel.unary_unary(path), b"")
    assert (err.code(), err.details()) == (grpc.StatusCode.UNIMPLEMENTED, "")


def test_server_lifecycle(tmp_path: Path, no_thread_leak: Any) -> None:
    root = tmp_path / "models"
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    before = sorted(no_thread_leak())
    with InferenceEngine(root) as engine:
        with GrpcServer(engine) as server:
            client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.port}")
            assert client.is_server_live()
            client.start_stream(callback=lambda result, error: None)  # holds a worker and a reader thread
            workers = [t for t in no_thread_leak() if t.startswith("tritonlite.grpc.")]
            assert len(workers) > len([t for t in before if t.startswith("tritonlite.grpc.")])
            with pytest.raises(Exception, match="failed to bind"):
                GrpcServer(engine, port=server.port).start()
            client.stop_stream()
            client.close()
        server.stop()  # idempotent
        with pytest.raises(Exception, match="not started"):
            GrpcServer(engine).port
    assert sorted(no_thread_leak()) == before


def test_serve_blocks_until_sigterm_then_exits_cleanly(tmp_path: Path) -> None:
    import signal
    import socket
    import time

    root = tmp_path / "models"
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = f"from tritonlite.grpc import serve; serve({str(root)!r}, '127.0.0.1', {port}, exit_timeout_secs=5)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.is_server_ready():
                    break
            except InferenceServerException:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        inp = grpcclient.InferInput("INPUT0", [4], "FP32")
        inp.set_data_from_numpy(np.ones(4, np.float32))
        assert client.infer("identity_py", [inp]).as_numpy("OUTPUT0").tolist() == [1, 1, 1, 1]
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_response_parameter_types() -> None:
    from tritonlite.errors import UnsupportedError
    from tritonlite.grpc.codec import set_parameter

    p = ours.InferParameter()
    for value, field in ((True, "bool_param"), (3, "int64_param"), ("s", "string_param"), (0.5, "double_param")):
        set_parameter(p, value)
        assert p.WhichOneof("parameter_choice") == field and getattr(p, field) == value
    with pytest.raises(UnsupportedError, match="TRITONSERVER_PARAMETER_BYTES"):
        set_parameter(p, b"raw")
