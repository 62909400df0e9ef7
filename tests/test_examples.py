"""The README's quick start and the example repository work as documented."""

from __future__ import annotations

import subprocess
import sys

import pytest

from model_repos import EXAMPLES, ROOT, SHARED


def test_quickstart_runs_and_prints_real_results() -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "ready: True models: ['add_sub', 'add_sub_onnx', 'scale']"
    assert lines[1] == "add_sub (python): [1. 2. 3. 4.] [-1.  0.  1.  2.]"
    assert lines[2].startswith("add_sub_onnx (onnxruntime): OUTPUT0[0,:4] = [")
    assert lines[3:5] == ["scale v1: [[1. 2.]]", "scale v2: [[2. 4.]]"]
    assert lines[5] == (
        "rejected: [request id: <id_unknown>] inference input 'INPUT0' data-type is 'INT32', but model 'add_sub' expects 'FP32'"
    )
    assert lines[6].startswith("add_sub statistics: {'count': 1, 'ns': ")


def test_committed_example_onnx_model_matches_its_builder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from model_repos import onnx_models

    rebuilt = onnx_models.add_sub(tmp_path / "model.onnx")
    assert rebuilt.read_bytes() == (EXAMPLES / "model_repository" / "add_sub_onnx" / "1" / "model.onnx").read_bytes()


def test_every_shared_config_loads_as_a_model_config() -> None:
    from tritonlite.config import load_config_file

    files = sorted((SHARED / "configs").glob("*.pbtxt"))
    if not files:
        pytest.skip(f"optional real-world config corpus not present at {SHARED / 'configs'}")
    assert len(files) == 48
    for f in files:
        assert load_config_file(f).ByteSize() > 0, f


def test_tracing_example_writes_and_summarises_a_trace_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trace = tmp_path / "trace.json"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "tracing" / "trace_to_file.py"), str(trace)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"trace file: {trace} (16 entries)"
    assert lines[1].startswith("add_sub v1 request first: REQUEST_START->QUEUE_START ")
    assert lines[2].startswith("scale v2 request second: REQUEST_START->QUEUE_START ")
    assert lines[2].count("->") == 6
