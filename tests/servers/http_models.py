"""The model repository the server tests run against (ONNX, Python, decoupled, sequence, ensemble)."""

from __future__ import annotations

from pathlib import Path

from model_repos import IDENTITY_PY, RAISING_PY, add_onnx_model, identity_py_config, write_model

ECHO_PARAMS_PY = """
import json
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            seen = {"parameters": json.loads(r.parameters()), "correlation_id": r.correlation_id(), "flags": r.flags()}
            text = np.array([json.dumps(seen).encode()], dtype=object)
            out.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor("OUTPUT0", x), pb_utils.Tensor("SEEN", text)],
                parameters={"echo": "yes", "count": 3}))
        return out
"""

# waits (bounded) until the request is cancelled and writes what it saw next to the model
WAIT_CANCEL_PY = """
import os, time
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            tag = int(x.reshape(-1)[0])
            deadline = time.monotonic() + 10
            while not r.is_cancelled() and time.monotonic() < deadline:
                time.sleep(0.002)
            with open(os.path.join(pb_utils.get_model_dir(), f"cancel_{tag}"), "w") as fh:
                fh.write(str(r.is_cancelled()))
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
        return out
"""

SLOW_PY = """
import time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        time.sleep(0.3)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
                for r in requests]
"""

REPEAT_CFG = """
name: "repeat"
backend: "python"
model_transaction_policy { decoupled: true }
input [ { name: "IN" data_type: TYPE_INT32 dims: [ -1 ] } ]
output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] }, { name: "IDX" data_type: TYPE_UINT32 dims: [ 1 ] } ]
"""

REPEAT_PY = """
import os, threading, time
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
            if value < 0:
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"negative value at {idx}")),
                            flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return
            if value >= 900:  # wait until the client goes away, then record it
                deadline = time.monotonic() + 10
                while not request.is_cancelled() and time.monotonic() < deadline:
                    time.sleep(0.002)
                with open(os.path.join(pb_utils.get_model_dir(), f"cancel_{value}"), "w") as fh:
                    fh.write(str(request.is_cancelled()))
                sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([value], np.int32)),
                                                    pb_utils.Tensor("IDX", np.array([idx], np.uint32))]))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
"""

TEXT_CFG = """
name: "text_py"
backend: "python"
max_batch_size: 0
input [ { name: "text_input" data_type: TYPE_STRING dims: [ 1 ] }, { name: "factor" data_type: TYPE_INT32 dims: [ 1 ] optional: true } ]
output [ { name: "text_output" data_type: TYPE_STRING dims: [ 1 ] }, { name: "length" data_type: TYPE_INT32 dims: [ 1 ] } ]
"""

TEXT_PY = """
import json
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            text = pb_utils.get_input_tensor_by_name(r, "text_input").as_numpy().reshape(-1)[0]
            f = pb_utils.get_input_tensor_by_name(r, "factor")
            n = int(f.as_numpy().reshape(-1)[0]) if f is not None else 1
            params = json.loads(r.parameters())
            result = (text.decode() * n).upper() if params.get("upper") else text.decode() * n
            out.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor("text_output", np.array([result.encode()], dtype=object)),
                 pb_utils.Tensor("length", np.array([len(result)], np.int32))],
                parameters={"seen_params": json.dumps(params, sort_keys=True)}))
        return out
"""

# accumulator per correlation id (sequence batcher, direct strategy, no control tensors)
SEQ_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.totals = {}

    def execute(self, requests):
        out = []
        for r in requests:
            cid = r.correlation_id()
            if r.flags() & 1:
                self.totals[cid] = 0
            x = pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy()
            self.totals[cid] = self.totals.get(cid, 0) + int(x.reshape(-1)[0])
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT", np.array([[self.totals[cid]]], np.int32))]))
        return out
"""

SEQ_CFG = """
name: "seq_py"
backend: "python"
max_batch_size: 4
sequence_batching { max_sequence_idle_microseconds: 10000000 }
input [ { name: "INPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUTPUT" data_type: TYPE_INT32 dims: [ 1 ] } ]
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

LABELS = "cat\ndog\nbird\nfish\n"

#: body limit of the shared HTTP test server (small, so the oversize tests stay fast)
HTTP_TEST_MAX_INPUT = 4 * 1024 * 1024


def build_repo(root: Path) -> Path:
    add_onnx_model(root)
    write_model(root, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    write_model(root, "raising_py", identity_py_config("raising_py"), {"1/model.py": RAISING_PY})
    write_model(root, "bytes_py", identity_py_config("bytes_py", dims="[ -1 ]", dtype="TYPE_STRING"), {"1/model.py": IDENTITY_PY})
    write_model(root, "fp16_py", identity_py_config("fp16_py", dims="[ -1 ]", dtype="TYPE_FP16"), {"1/model.py": IDENTITY_PY})
    write_model(root, "int_py", identity_py_config("int_py", dims="[ -1 ]", dtype="TYPE_INT64"), {"1/model.py": IDENTITY_PY})
    write_model(root, "bool_py", identity_py_config("bool_py", dims="[ -1 ]", dtype="TYPE_BOOL"), {"1/model.py": IDENTITY_PY})
    write_model(root, "var_py", identity_py_config("var_py", dims="[ -1 ]"), {"1/model.py": IDENTITY_PY})
    write_model(
        root,
        "labels_py",
        """
        name: "labels_py"
        backend: "python"
        max_batch_size: 4
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] label_filename: "labels.txt" } ]
        """,
        {"1/model.py": IDENTITY_PY, "labels.txt": LABELS},
    )
    write_model(
        root,
        "echo_params_py",
        """
        name: "echo_params_py"
        backend: "python"
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "SEEN" data_type: TYPE_STRING dims: [ 1 ] } ]
        """,
        {"1/model.py": ECHO_PARAMS_PY},
    )
    write_model(root, "wait_cancel_py", identity_py_config("wait_cancel_py", dims="[ 1 ]"), {"1/model.py": WAIT_CANCEL_PY})
    write_model(root, "slow_py", identity_py_config("slow_py", dims="[ 1 ]"), {"1/model.py": SLOW_PY})
    write_model(root, "repeat", REPEAT_CFG, {"1/model.py": REPEAT_PY})
    write_model(root, "text_py", TEXT_CFG, {"1/model.py": TEXT_PY})
    write_model(root, "seq_py", SEQ_CFG, {"1/model.py": SEQ_PY})
    write_model(root, "ens_add_sub", ENSEMBLE_CFG, {"1/.keep": ""})
    return root
