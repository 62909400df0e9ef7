"""Builders for small model repositories on disk: real ONNX files (via examples/build_onnx_models.py) and real model.py files."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared"  # the optional real-world config corpus beside a development checkout
CONFIG_DATA = ROOT / "tests" / "config" / "data"  # our own config files, one per parser feature


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
