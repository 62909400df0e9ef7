"""model_warmup: samples run on every instance before READY, never in statistics, failures name the sample.

Python models log each execute call to a file in their model directory, so the test sees exactly what
warmup sent; ONNX models are real onnxruntime sessions.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from model_repos import ADD_SUB_ONNX_CONFIG, add_onnx_model, write_model
from tritonlite import InferenceEngine

LOGGING_PY = """
import json, os
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.log = os.path.join(args["model_repository"], "calls.jsonl")
        self.instance = args["model_instance_name"]

    def execute(self, requests):
        out = []
        seen = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            if x.dtype == np.object_:
                seen.append([v.decode() for v in x.reshape(-1)])
            else:
                seen.append({"dtype": str(x.dtype), "shape": list(x.shape), "values": x.reshape(-1).tolist()})
                if (x < 0).any():
                    raise ValueError("negative warmup input")
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
        with open(self.log, "a") as f:
            f.write(json.dumps({"instance": self.instance, "requests": seen}) + "\\n")
        return out
"""

DECOUPLED_PY = """
import json, os
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.log = os.path.join(args["model_repository"], "calls.jsonl")

    def execute(self, requests):
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            sender = r.get_response_sender()
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        with open(self.log, "a") as f:
            f.write(json.dumps({"requests": len(requests)}) + "\\n")
        return None
"""


def _py_model(root: Path, name: str, warmup: str, *, dtype: str = "TYPE_FP32", dims: str = "[ 4 ]", max_batch: int = 4,
              extra: str = "", code: str = LOGGING_PY, files: dict | None = None) -> Path:
    config = f"""
        name: "{name}"
        backend: "python"
        max_batch_size: {max_batch}
        input [ {{ name: "INPUT0" data_type: {dtype} dims: {dims} }} ]
        output [ {{ name: "OUTPUT0" data_type: {dtype} dims: {dims} }} ]
        {extra}
        {warmup}
    """
    return write_model(root, name, config, {"1/model.py": code, **(files or {})})


def _calls(model_dir: Path) -> list[dict]:
    path = model_dir / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _reason(engine: InferenceEngine, model: str) -> str:
    entries = [e for e in engine.repository_index() if e["name"] == model]
    assert entries and entries[0]["state"] == "UNAVAILABLE", entries
    return entries[0]["reason"]


def _zero_stats(engine: InferenceEngine, model: str) -> None:
    s = engine.model_statistics(model)["model_stats"][0]
    assert (s["inference_count"], s["execution_count"], s["last_inference"], s["batch_stats"]) == (0, 0, 0, [])
    assert all(v == {"count": 0, "ns": 0} for v in s["inference_stats"].values())


def test_samples_run_on_every_instance_before_ready_and_stay_out_of_statistics(tmp_path: Path) -> None:
    root = tmp_path / "models"
    data = np.array([1.5, -0.0, 2.25, 8.0], dtype=np.float32)
    model = _py_model(root, "logged_py", """
        instance_group [ { kind: KIND_CPU count: 2 } ]
        model_warmup [
          { name: "from_file" batch_size: 3 count: 2
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 4 ] input_data_file: "in0.bin" } } },
          { name: "zeros" batch_size: 1
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } },
          { name: "skipped" batch_size: 0
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } }
        ]
    """, files={"warmup/in0.bin": data.tobytes() + b"extra bytes are ignored"})
    with InferenceEngine(root) as engine:
        assert engine.is_model_ready("logged_py")
        calls = _calls(model)
        # per instance: from_file twice (3 requests of batch 1 each, executed together), zeros once
        assert sorted(c["instance"] for c in calls) == ["logged_py_0_0"] * 3 + ["logged_py_0_1"] * 3
        per_instance = [c["requests"] for c in calls if c["instance"] == "logged_py_0_0"]
        file_req = {"dtype": "float32", "shape": [1, 4], "values": data.tolist()}
        zero_req = {"dtype": "float32", "shape": [1, 4], "values": [0.0] * 4}
        assert per_instance == [[file_req] * 3, [file_req] * 3, [zero_req]]
        _zero_stats(engine, "logged_py")
        assert 'nv_inference_exec_count{model="logged_py",version="1"} 0' in engine.metrics()
        x = np.ones((1, 4), dtype=np.float32)
        assert engine.infer("logged_py", {"INPUT0": x}).outputs["OUTPUT0"].tolist() == x.tolist()
        assert engine.model_statistics("logged_py")["model_stats"][0]["execution_count"] == 1


def test_random_bytes_and_file_bytes_inputs_for_a_non_batching_model(tmp_path: Path) -> None:
    root = tmp_path / "models"
    words = [b"warm", b"", b"up!"]
    blob = b"".join(struct.pack("<I", len(w)) + w for w in words)
    model = _py_model(root, "strings_py", """
        model_warmup [
          { name: "file" batch_size: 2
            inputs { key: "INPUT0" value: { data_type: TYPE_STRING dims: [ 3 ] input_data_file: "words.bin" } } },
          { name: "random" batch_size: 1
            inputs { key: "INPUT0" value: { data_type: TYPE_STRING dims: [ 2 ] random_data: true } } }
        ]
    """, dtype="TYPE_STRING", dims="[ -1 ]", max_batch=0, files={"warmup/words.bin": blob})
    rand_model = _py_model(root, "random_py", """
        model_warmup [ { name: "r" batch_size: 2
            inputs { key: "INPUT0" value: { data_type: TYPE_INT16 dims: [ 3 ] random_data: true } } } ]
    """, dtype="TYPE_INT16", dims="[ 3 ]", code=LOGGING_PY.replace("if (x < 0).any():", "if False:"))
    with InferenceEngine(root) as engine:
        assert engine.is_model_ready("strings_py") and engine.is_model_ready("random_py")
        # a model that does not batch gets its warmup requests one at a time, without a batch dim
        assert [c["requests"] for c in _calls(model)] == [[["warm", "", "up!"]], [["warm", "", "up!"]], [["", ""]]]
        (call,) = _calls(rand_model)
        assert [(r["dtype"], r["shape"], len(r["values"])) for r in call["requests"]] == [("int16", [1, 3], 3)] * 2
        _zero_stats(engine, "strings_py")


def test_a_failing_sample_leaves_the_model_unavailable_with_its_name_and_others_serve(tmp_path: Path) -> None:
    root = tmp_path / "models"
    _py_model(root, "failing_py", """
        model_warmup [ { name: "negative_sample" batch_size: 1
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 4 ] input_data_file: "neg.bin" } } } ]
    """, files={"warmup/neg.bin": np.full(4, -1.0, dtype=np.float32).tobytes()})
    _py_model(root, "missing_py", """
        model_warmup [ { name: "needs_file" batch_size: 1
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 4 ] input_data_file: "nope.bin" } } } ]
    """)
    _py_model(root, "short_py", """
        model_warmup [ { name: "short" batch_size: 1
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 4 ] input_data_file: "short.bin" } } } ]
    """, files={"warmup/short.bin": b"12345678"})
    _py_model(root, "variable_py", """
        model_warmup [ { name: "var" batch_size: 1
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ -1 ] zero_data: true } } } ]
    """, dims="[ -1 ]")
    _py_model(root, "ok_py", "")
    with InferenceEngine(root) as engine:
        assert _reason(engine, "failing_py") == (
            "failed to run warmup sample 'negative_sample': Failed to process the request(s) for model 'failing_py_0', "
            "message: ValueError: negative warmup input; ")
        missing = root / "missing_py" / "warmup" / "nope.bin"
        assert _reason(engine, "missing_py") == (
            f"model 'missing_py' warmup sample 'needs_file': input 'INPUT0' input_data_file 'nope.bin' does not exist "
            f"(looked for {missing})")
        assert _reason(engine, "short_py") == (
            "model 'short_py' warmup sample 'short': warmup setting expects 16 bytes, but the data provided from "
            "short.bin only has 8 bytes")
        assert _reason(engine, "variable_py") == (
            "model 'variable_py' warmup sample 'var': warmup setting expects all variable-size dimensions are "
            "specified for input 'INPUT0'")
        assert not engine.is_model_ready("failing_py")
        assert engine.infer("ok_py", {"INPUT0": np.ones((1, 4), np.float32)}).outputs["OUTPUT0"].shape == (1, 4)


def test_onnx_warmup_decoupled_warmup_and_ensemble_refusal(tmp_path: Path) -> None:
    root = tmp_path / "models"
    warm = """
        model_warmup [ { name: "onnx_warm" batch_size: 4 count: 3
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 16 ] random_data: true } }
            inputs { key: "INPUT1" value: { data_type: TYPE_FP32 dims: [ 16 ] zero_data: true } } } ]
    """
    add_onnx_model(root, "onnx_warm", config=ADD_SUB_ONNX_CONFIG.format(name="onnx_warm") + warm)
    bad = warm.replace("dims: [ 16 ] zero_data", "dims: [ 8 ] zero_data")
    add_onnx_model(root, "onnx_bad_shape", config=ADD_SUB_ONNX_CONFIG.format(name="onnx_bad_shape") + bad)
    dec = _py_model(root, "decoupled_py", """
        model_warmup [ { name: "d" batch_size: 2
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]
    """, extra="model_transaction_policy { decoupled: true }", code=DECOUPLED_PY)
    write_model(root, "ens_warm", """
        name: "ens_warm"
        platform: "ensemble"
        input [ { name: "X" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "Y" data_type: TYPE_FP32 dims: [ 4 ] } ]
        ensemble_scheduling { step [ { model_name: "decoupled_py" model_version: -1
            input_map { key: "INPUT0" value: "X" } output_map { key: "OUTPUT0" value: "Y" } } ] }
        model_warmup [ { name: "e" batch_size: 1 inputs { key: "X" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } } ]
    """, {"1/.keep": ""})
    with InferenceEngine(root) as engine:
        assert engine.is_model_ready("onnx_warm")
        _zero_stats(engine, "onnx_warm")
        x = {"INPUT0": np.full((1, 16), 2.0, np.float32), "INPUT1": np.ones((1, 16), np.float32)}
        assert engine.infer("onnx_warm", x).outputs["OUTPUT0"].tolist() == [[3.0] * 16]
        assert _reason(engine, "onnx_bad_shape").startswith(
            "model 'onnx_bad_shape' warmup sample 'onnx_warm': [request id: warmup:onnx_warm:0] unexpected shape for "
            "input 'INPUT1' for model 'onnx_bad_shape'. Expected [-1,16], got [1,8].")
        assert _calls(dec) == [{"requests": 2}]
        _zero_stats(engine, "decoupled_py")
        assert _reason(engine, "ens_warm").endswith("model_warmup can not be specified for ensemble 'ens_warm'")


SEQUENCE_PY = """
import json, os
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.log = os.path.join(args["model_repository"], "calls.jsonl")

    def execute(self, requests):
        out = []
        with open(self.log, "a") as f:
            for r in requests:
                x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
                start = pb_utils.get_input_tensor_by_name(r, "START").as_numpy()
                f.write(json.dumps({"start": start.tolist(), "shape": list(x.shape)}) + "\\n")
                out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
        return out
"""


def test_sequence_model_warmup_passes_control_inputs_straight_to_the_backend(tmp_path: Path) -> None:
    root = tmp_path / "models"
    model = _py_model(root, "seq_py", """
        model_warmup [ { name: "seq_start" batch_size: 1
            inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } }
            inputs { key: "START" value: { data_type: TYPE_INT32 dims: [ 1 ] input_data_file: "start.bin" } } } ]
    """, extra="""sequence_batching { control_input [ { name: "START"
        control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] } ] }""",
        code=SEQUENCE_PY, files={"warmup/start.bin": np.array([1], dtype=np.int32).tobytes()})
    with InferenceEngine(root) as engine:
        assert engine.is_model_ready("seq_py")
        assert _calls(model) == [{"start": [[1]], "shape": [1, 4]}]
        _zero_stats(engine, "seq_py")
        out = engine.infer("seq_py", {"INPUT0": np.ones((1, 4), np.float32)}, sequence_id=7, sequence_start=True,
                           sequence_end=True)
        assert out.outputs["OUTPUT0"].tolist() == [[1.0] * 4]
        assert _calls(model)[-1] == {"start": [[1]], "shape": [1, 4]}


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
def test_pytorch_models_warm_up_through_the_same_execute(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class Checked(torch.nn.Module):
        def forward(self, a: torch.Tensor) -> torch.Tensor:
            if bool((a < 0).any()):
                raise ValueError("negative input")
            return a * 2

    root = tmp_path / "models"
    for name, data in (("torch_ok", np.ones(4, np.float32)), ("torch_bad", np.full(4, -1.0, np.float32))):
        (root / name / "1").mkdir(parents=True)
        torch.jit.script(Checked()).save(str(root / name / "1" / "model.pt"))
        write_model(root, name, f"""
            name: "{name}"
            platform: "pytorch_libtorch"
            max_batch_size: 4
            input [ {{ name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
            output [ {{ name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
            model_warmup [ {{ name: "w" batch_size: 2
                inputs {{ key: "INPUT__0" value: {{ data_type: TYPE_FP32 dims: [ 4 ] input_data_file: "a.bin" }} }} }} ]
        """, {"warmup/a.bin": data.tobytes()})
    with InferenceEngine(root) as engine:
        assert engine.is_model_ready("torch_ok")
        _zero_stats(engine, "torch_ok")
        assert engine.infer("torch_ok", {"INPUT__0": np.ones((1, 4), np.float32)}).outputs["OUTPUT__0"].tolist() == [[2.0] * 4]
        reason = _reason(engine, "torch_bad")
        assert reason.startswith("failed to run warmup sample 'w': ") and "negative input" in reason
