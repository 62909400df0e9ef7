"""Traces of BLS requests (python_backend's ``trace=request.trace()``): child traces with the caller's
``parent_id`` in Triton's trace file, child spans in OpenTelemetry mode; BLS requests made without it
are not traced (Triton's rule), in-process and in an isolated model's process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tritonlite import InferenceEngine

from model_repos import IDENTITY_PY, identity_py_config, write_model

# the caller's trace context is read before the BLS calls: get_context() needs no finished span
CALLER_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            context = r.trace().get_context()
            traced = pb_utils.InferenceRequest(model_name="identity", request_id="child-traced", trace=r.trace(),
                                               inputs=[pb_utils.Tensor("INPUT0", x + 1)], requested_output_names=["OUTPUT0"])
            plain = pb_utils.InferenceRequest(model_name="identity", request_id="child-plain",
                                              inputs=[pb_utils.Tensor("INPUT0", x + 2)], requested_output_names=["OUTPUT0"])
            a = pb_utils.get_output_tensor_by_name(traced.exec(), "OUTPUT0").as_numpy()
            b = pb_utils.get_output_tensor_by_name(plain.exec(), "OUTPUT0").as_numpy()
            out.append(pb_utils.InferenceResponse([
                pb_utils.Tensor("OUTPUT0", a + b),
                pb_utils.Tensor("CONTEXT", np.array([context or "none"], dtype=np.object_)),
            ]))
        return out
"""

# decoupled: the final response goes out first, then a traced BLS call (its parent's trace is already written)
LATE_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            sender = r.get_response_sender()
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]),
                        flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            pb_utils.InferenceRequest(model_name="identity", request_id="after-final", trace=r.trace(),
                                      inputs=[pb_utils.Tensor("INPUT0", x)], requested_output_names=["OUTPUT0"]).exec()
        return None
"""

NAMES = ["REQUEST_START", "QUEUE_START", "COMPUTE_START", "COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START", "COMPUTE_END", "REQUEST_END"]
ISOLATED = 'parameters { key: "isolation" value: { string_value: "process" } }'
X = np.arange(4, dtype=np.float32)


def _caller_config(isolated: bool) -> str:
    return f"""
        name: "caller"
        backend: "python"
        max_batch_size: 0
        input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
        output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }}, {{ name: "CONTEXT" data_type: TYPE_STRING dims: [ 1 ] }} ]
        {ISOLATED if isolated else ""}
    """


def _repo(root: Path, isolated: bool) -> Path:
    write_model(root, "identity", identity_py_config("identity"), {"1/model.py": IDENTITY_PY})
    write_model(root, "caller", _caller_config(isolated), {"1/model.py": CALLER_PY})
    write_model(root, "late", identity_py_config("late", extra="model_transaction_policy { decoupled: true }"),
                {"1/model.py": LATE_PY})
    return root


def _heads_and_stamps(path: Path) -> tuple[list[dict[str, Any]], dict[int, list[str]]]:
    heads, stamps = [], {}
    for e in json.loads(path.read_text()):
        if "model_name" in e:
            heads.append(e)
        for s in e.get("timestamps", []):
            stamps.setdefault(e["id"], []).append(s["name"])
    return sorted(heads, key=lambda h: h["id"]), stamps


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
def test_bls_with_the_callers_trace_is_a_child_trace_and_bls_without_it_is_not_traced(tmp_path: Path, isolated: bool) -> None:
    path = tmp_path / "trace.json"
    repo = _repo(tmp_path / "models", isolated)
    with InferenceEngine(repo, trace_config=["level=TIMESTAMPS", "rate=1", f"triton,file={path}"]) as engine:
        out = engine.infer("caller", {"INPUT0": X}, request_id="parent")
        np.testing.assert_array_equal(out.as_numpy("OUTPUT0"), 2 * X + 3)
        assert out.as_numpy("CONTEXT").tolist() == [b"none"]  # Triton's trace mode has no context to hand on
    heads, stamps = _heads_and_stamps(path)
    assert heads == [
        {"id": heads[0]["id"], "model_name": "caller", "model_version": 1, "request_id": "parent"},
        {"id": heads[1]["id"], "model_name": "identity", "model_version": 1, "request_id": "child-traced",
         "parent_id": heads[0]["id"]},
    ]
    assert stamps[heads[0]["id"]] == NAMES and stamps[heads[1]["id"]] == NAMES


def test_untraced_requests_hand_on_no_trace_and_bls_requests_take_no_samples(tmp_path: Path) -> None:
    """rate=2 traces every second request: BLS requests are not sampled, so the 2nd caller request is the traced one."""
    path = tmp_path / "trace.json"
    repo = _repo(tmp_path / "models", False)
    with InferenceEngine(repo, trace_config=["level=TIMESTAMPS", "rate=2", f"triton,file={path}"]) as engine:
        engine.infer("caller", {"INPUT0": X}, request_id="first")   # not sampled: its trace() is empty
        engine.infer("caller", {"INPUT0": X}, request_id="second")  # sampled
    heads, _ = _heads_and_stamps(path)
    assert [(h["model_name"], h["request_id"], h.get("parent_id")) for h in heads] == [
        ("caller", "second", None), ("identity", "child-traced", heads[0]["id"])]


def test_a_child_that_ends_after_its_parent_trace_was_written_is_written_alone(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    repo = _repo(tmp_path / "models", False)
    with InferenceEngine(repo, trace_config=["level=TIMESTAMPS", "rate=1", f"triton,file={path}"]) as engine:
        got = [r.as_numpy("OUTPUT0").tolist() for r in engine.stream_infer("late", {"INPUT0": X}, request_id="p")]
        assert got == [X.tolist()]
    # engine.close() joined the instance thread: the BLS call made after the final response is done
    heads, stamps = _heads_and_stamps(path)
    assert [(h["model_name"], h["request_id"], h.get("parent_id")) for h in heads] == [
        ("late", "p", None), ("identity", "after-final", heads[0]["id"])]
    assert stamps[heads[1]["id"]] == NAMES


def test_a_trace_argument_that_is_not_an_inference_trace_is_a_type_error() -> None:
    from tritonlite.backends.python import pb_utils

    with pytest.raises(TypeError) as err:
        pb_utils.InferenceRequest(model_name="m", inputs=[], requested_output_names=[], trace="00-abc")
    assert str(err.value) == "trace must be a pb_utils.InferenceTrace (request.trace()), found type '<class 'str'>'"
    assert pb_utils.InferenceTrace().get_context() is None


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
def test_opentelemetry_bls_child_span_is_under_the_callers_span_and_get_context_names_it(tmp_path: Path, isolated: bool) -> None:
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from otlp_collector import OtlpCollector as _Collector
    from otlp_collector import span_attributes as _attrs

    collector = _Collector()
    try:
        repo = _repo(tmp_path / "models", isolated)
        config = ["mode=opentelemetry", "level=TIMESTAMPS", "rate=1", f"opentelemetry,url={collector.url}"]
        with InferenceEngine(repo, trace_config=config) as engine:
            out = engine.infer("caller", {"INPUT0": X}, request_id="parent")
        spans = [s for _, s in collector.spans()]
    finally:
        collector.stop()
    assert sorted(s.name for s in spans) == ["InferRequest", "caller", "compute", "compute", "identity"]
    named = {s.name: s for s in spans}
    caller, child = named["caller"], named["identity"]
    assert child.parent_span_id == caller.span_id and child.trace_id == caller.trace_id
    assert caller.parent_span_id == named["InferRequest"].span_id
    assert _attrs(child)["triton.trace_parent_id"] == _attrs(caller)["triton.trace_id"]
    assert _attrs(child)["triton.request_id"] == "child-traced"
    # the context the model read during execute names the span exported afterwards (Triton's JSON form)
    context = json.loads(out.as_numpy("CONTEXT")[0])
    assert context == {"traceparent": f"00-{caller.trace_id.hex()}-{caller.span_id.hex()}-01"}
