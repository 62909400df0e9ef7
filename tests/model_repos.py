"""Builders for small model repositories on disk: real ONNX files (via examples/build_onnx_models.py) and real model.py files."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared"  # the optional real-world config corpus beside a development checkout
CONFIG_DATA = ROOT / "tests" / "config" / "data"  # our own config files, one per parser feature


def run_example(folder: str, *args: str, script: str = "client.py", env: dict[str, str] | None = None) -> list[str]:
    """Run ``examples/<folder>/<script>`` with this interpreter from the repository root; its stdout lines.

    A non-zero exit fails the calling test with the script's output."""
    import os
    import subprocess
    import sys

    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    proc = subprocess.run([sys.executable, str(EXAMPLES / folder / script), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=full_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def shared_config_params() -> list:  # type: ignore[type-arg]
    """The 48 real-world configs of ../shared/configs as pytest params, or one skipped param when absent.

    They are an optional extra corpus: a user's clone has nothing beside it, and the features they exercise
    are covered by the files in ``CONFIG_DATA``."""
    import pytest

    files = sorted((SHARED / "configs").glob("*.pbtxt"))
    if not files:
        reason = f"optional real-world config corpus not present at {SHARED / 'configs'}"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="shared-corpus-absent")]
    return [pytest.param(f, id=f.name[:70]) for f in files]


def _load_builders():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_onnx_models", EXAMPLES / "build_onnx_models.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


onnx_models = _load_builders()


def write_model(root: Path, name: str, config: str | None, files: dict[str, str | bytes] | None = None) -> Path:
    """Create ``root/name`` with an optional config.pbtxt and ``files`` (relative path -> content)."""
    model_dir = root / name
    model_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (model_dir / "config.pbtxt").write_text(textwrap.dedent(config))
    for rel, content in (files or {}).items():
        path = model_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content))
    return model_dir


IDENTITY_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
        return out
"""

RAISING_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        x = pb_utils.get_input_tensor_by_name(requests[0], "INPUT0").as_numpy()
        if x.reshape(-1)[0] < 0:
            raise ValueError("negative input is not allowed")
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x * 2)]) for r in requests]
"""


def identity_py_config(name: str, dims: str = "[ 4 ]", max_batch: int = 0, dtype: str = "TYPE_FP32", extra: str = "") -> str:
    return f"""
        name: "{name}"
        backend: "python"
        max_batch_size: {max_batch}
        input [ {{ name: "INPUT0" data_type: {dtype} dims: {dims} }} ]
        output [ {{ name: "OUTPUT0" data_type: {dtype} dims: {dims} }} ]
        {extra}
    """


ADD_SUB_ONNX_CONFIG = """
    name: "{name}"
    platform: "onnxruntime_onnx"
    max_batch_size: 8
    input [
      {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] }},
      {{ name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] }}
    ]
    output [
      {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] }},
      {{ name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] }}
    ]
    instance_group [ {{ kind: KIND_CPU count: 2 }} ]
"""


def add_onnx_model(root: Path, name: str = "add_sub_onnx", versions: tuple[int, ...] = (1,), config: str | None = None) -> Path:
    model_dir = write_model(root, name, ADD_SUB_ONNX_CONFIG.format(name=name) if config is None else config)
    for v in versions:
        onnx_models.add_sub(model_dir / str(v) / "model.onnx")
    return model_dir


# ---- Triton's python_backend examples, re-written (issue 16): BLS with a bytes model name, decoupled BLS
# summing into an int64 array for an INT32 output, ensembles whose step returns int64 for INT32 -------------
_EXAMPLE_PY = {
    # examples/add_sub: two FP32 inputs, their sum and difference
    "add_sub": """
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            def execute(self, requests):
                out = []
                for r in requests:
                    a = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
                    b = pb_utils.get_input_tensor_by_name(r, "INPUT1").as_numpy()
                    out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", a + b), pb_utils.Tensor("OUTPUT1", a - b)]))
                return out
    """,
    # examples/bls sync: the target model's name arrives in a BYTES tensor, so it is bytes, not str
    "bls_sync": """
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            def execute(self, requests):
                out = []
                for r in requests:
                    name = pb_utils.get_input_tensor_by_name(r, "MODEL_NAME").as_numpy()[0]
                    bls = pb_utils.InferenceRequest(
                        model_name=name, requested_output_names=["OUTPUT0", "OUTPUT1"],
                        inputs=[pb_utils.get_input_tensor_by_name(r, "INPUT0"), pb_utils.get_input_tensor_by_name(r, "INPUT1")])
                    resp = bls.exec()
                    if resp.has_error():
                        raise pb_utils.TritonModelException(resp.error().message())
                    out.append(pb_utils.InferenceResponse(output_tensors=resp.output_tensors()))
                return out
    """,
    # examples/decoupled square: IN=n answers n responses, each OUT=n (int32), then the final flag alone
    "square_int32": """
        import numpy as np
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            def execute(self, requests):
                for r in requests:
                    n = int(pb_utils.get_input_tensor_by_name(r, "IN").as_numpy()[0])
                    sender = r.get_response_sender()
                    for _ in range(n):
                        sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([n], np.int32))]))
                    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return None
    """,
    # examples/bls_decoupled sync: np.array([0]) is int64, so SUM (declared TYPE_INT32) comes back int64
    "bls_decoupled_sync": """
        import numpy as np
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            def execute(self, requests):
                num = pb_utils.get_input_tensor_by_name(requests[0], "IN")
                bls = pb_utils.InferenceRequest(model_name="square_int32", inputs=[num], requested_output_names=["OUT"])
                total = np.array([0])
                for resp in bls.exec(decoupled=True):
                    if resp.has_error():
                        raise pb_utils.TritonModelException(resp.error().message())
                    if len(resp.output_tensors()) > 0:
                        total += pb_utils.get_output_tensor_by_name(resp, "OUT").as_numpy()
                return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("SUM", total)])]
    """,
    # examples/bls_decoupled async: two decoupled BLS calls gathered on the model's event loop
    "bls_decoupled_async": """
        import asyncio
        import numpy as np
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            async def execute(self, requests):
                num = pb_utils.get_input_tensor_by_name(requests[0], "IN")
                calls = [pb_utils.InferenceRequest(model_name="square_int32", inputs=[num], requested_output_names=["OUT"])
                         .async_exec(decoupled=True) for _ in range(2)]
                total = np.array([0])
                for responses in await asyncio.gather(*calls):
                    for resp in responses:
                        if resp.has_error():
                            raise pb_utils.TritonModelException(resp.error().message())
                        if len(resp.output_tensors()) > 0:
                            total += pb_utils.get_output_tensor_by_name(resp, "OUT").as_numpy()
                return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("SUM", total)])]
    """,
    # a unary model whose OUT (declared TYPE_INT32) is int64: what Triton labels INT64 on the wire
    "widen_int32": """
        import numpy as np
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            def execute(self, requests):
                return [pb_utils.InferenceResponse([pb_utils.Tensor(
                    "OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy().astype(np.int64) * 2)]) for r in requests]
    """,
    # the decoupled form: IN=n responses of int64 OUT=[0..n) for an INT32 output
    "widen_int32_decoupled": """
        import numpy as np
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            def execute(self, requests):
                for r in requests:
                    n = int(pb_utils.get_input_tensor_by_name(r, "IN").as_numpy()[0])
                    sender = r.get_response_sender()
                    for i in range(n):
                        sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([i], np.int64))]))
                    sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return None
    """,
    "identity_int32": """
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            def execute(self, requests):
                return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", pb_utils.get_input_tensor_by_name(r, "IN").as_numpy())])
                        for r in requests]
    """,
}
#: Triton's decoupled "square" example (IN=n answers n responses OUT=n, then the final flag alone)
SQUARE_INT32_PY = _EXAMPLE_PY["square_int32"]
ADD_SUB_PY = _EXAMPLE_PY["add_sub"]  # two FP32 inputs: OUTPUT0 = sum, OUTPUT1 = difference


def _int32_io(name: str, out: str, decoupled: bool = False) -> str:
    policy = "model_transaction_policy { decoupled: true }" if decoupled else ""
    return f"""
        name: "{name}"
        backend: "python"
        input [ {{ name: "IN" data_type: TYPE_INT32 dims: [ 1 ] }} ]
        output [ {{ name: "{out}" data_type: TYPE_INT32 dims: [ 1 ] }} ]
        {policy}
    """


def _ensemble(name: str, steps: list[tuple[str, str, str]], out: str) -> str:
    """An ensemble IN -> steps (model, input tensor, output tensor) -> ``out``, all declared TYPE_INT32."""
    body = ", ".join(
        f'{{ model_name: "{m}" model_version: -1 input_map {{ key: "IN" value: "{i}" }} output_map {{ key: "OUT" value: "{o}" }} }}'
        for m, i, o in steps
    )
    return f"""
        name: "{name}"
        platform: "ensemble"
        input [ {{ name: "IN" data_type: TYPE_INT32 dims: [ 1 ] }} ]
        output [ {{ name: "{out}" data_type: TYPE_INT32 dims: [ 1 ] }} ]
        ensemble_scheduling {{ step [ {body} ] }}
    """


def build_triton_example_models(root: Path) -> Path:
    """The issue-16 repository: Triton's example models (own code, same behaviour) plus dtype-mismatch cases."""
    fp32_pair = """
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }, { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] } ]
    """
    configs = {
        "add_sub": f'name: "add_sub"\nbackend: "python"\nmax_batch_size: 0\n{fp32_pair}',
        "bls_sync": 'name: "bls_sync"\nbackend: "python"\n'
                    'input [ { name: "MODEL_NAME" data_type: TYPE_STRING dims: [ 1 ] } ]\n' + fp32_pair,
        "square_int32": _int32_io("square_int32", "OUT", decoupled=True),
        "bls_decoupled_sync": _int32_io("bls_decoupled_sync", "SUM"),
        "bls_decoupled_async": _int32_io("bls_decoupled_async", "SUM"),
        "widen_int32": _int32_io("widen_int32", "OUT"),
        "widen_int32_decoupled": _int32_io("widen_int32_decoupled", "OUT", decoupled=True),
        "identity_int32": _int32_io("identity_int32", "OUT"),
    }
    for name, code in _EXAMPLE_PY.items():
        write_model(root, name, configs[name], {"1/model.py": code})
    # the int64 step output is the ensemble's output: it leaves labelled INT64, as in Triton
    write_model(root, "ens_widen", _ensemble("ens_widen", [("widen_int32", "IN", "WIDE")], "WIDE"))
    (root / "ens_widen" / "1").mkdir()
    # the int64 step output feeds an INT32 input: the next step refuses it with Triton's input data-type error
    write_model(root, "ens_widen_then_int32", _ensemble(
        "ens_widen_then_int32", [("widen_int32", "IN", "WIDE"), ("identity_int32", "WIDE", "FINAL")], "FINAL"))
    (root / "ens_widen_then_int32" / "1").mkdir()
    return root
