"""The gate model of the metrics tests: a Python identity whose single instance blocks while its tag is held."""

from __future__ import annotations

from pathlib import Path

from model_repos import write_model

GATE_MODULE = "tl_metrics_gate"

#: identity model whose execute blocks while the first element of any input it got is "held"
GATE_PY = """
import sys

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        xs = [pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy() for r in requests]
        sys.modules["tl_metrics_gate"].GATE.entered([int(x.reshape(-1)[0]) for x in xs])
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]) for x in xs]
"""


def gate_model(root: Path, name: str = "gate", *, max_batch: int = 8, scheduling: str = "", extra: str = "") -> Path:
    """A Python identity on FP32 ``[-1]`` with one instance that blocks while its tag is held."""
    return write_model(root, name, f"""
        name: "{name}"
        backend: "python"
        max_batch_size: {max_batch}
        input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
        output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] }} ]
        instance_group [ {{ kind: KIND_CPU count: 1 }} ]
        {scheduling}
        {extra}
    """, {"1/model.py": GATE_PY})
