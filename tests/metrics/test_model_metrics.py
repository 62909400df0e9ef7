"""Per-model metrics: Triton's names, types and labels, exact values after known traffic, and parity
with the statistics API (both are read from the same counters and timestamps)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine, InternalError, InvalidArgumentError, UnavailableError, UnsupportedError

from metrics_models import gate_model
from model_repos import IDENTITY_PY, RAISING_PY, add_onnx_model, identity_py_config, write_model

REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")
COUNTERS = (
    "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count", "nv_inference_exec_count",
    "nv_inference_request_duration_us", "nv_inference_queue_duration_us", "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us", "nv_inference_compute_output_duration_us",
)
GAUGES = ("nv_inference_pending_request_count", "nv_model_load_duration_secs")
DURATIONS = {
    "nv_inference_request_duration_us": "success",
    "nv_inference_queue_duration_us": "queue",
    "nv_inference_compute_input_duration_us": "compute_input",
    "nv_inference_compute_infer_duration_us": "compute_infer",
    "nv_inference_compute_output_duration_us": "compute_output",
}


def x4(value: float = 1.0) -> dict[str, np.ndarray]:
    return {"INPUT0": np.full(4, value, np.float32)}


def tagged(tag: int, rows: int = 1) -> dict[str, np.ndarray]:
    return {"INPUT0": np.full((rows, 2), tag, np.float32)}


def assert_parity(engine: InferenceEngine, scrape, model: str, version: str = "1") -> None:  # type: ignore[no-untyped-def]
    """The statistics API and the metrics report exactly the same numbers."""
    m = scrape(engine)
    s = engine.model_statistics(model, version)["model_stats"][0]
    inf = s["inference_stats"]
    labels = {"model": model, "version": version}
    assert m.value("nv_inference_request_success", **labels) == inf["success"]["count"]
    failures = sum(m.value("nv_inference_request_failure", reason=r, **labels) for r in REASONS)
    assert failures == inf["fail"]["count"]
    assert m.value("nv_inference_count", **labels) == s["inference_count"]
    assert m.value("nv_inference_exec_count", **labels) == s["execution_count"]
    for name, key in DURATIONS.items():
        assert m.value(name, **labels) == inf[key]["ns"] // 1000, name


def test_names_types_and_labels(repo: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo) as engine:
        m = scrape(engine)
        for name in COUNTERS:
            assert m.type(name) == "counter", name
        for name in GAUGES:
            assert m.type(name) == "gauge", name
        models = {"add_sub_onnx", "identity_py", "raising_py"}
        assert m.models() == models
        assert sorted(m.labelsets("nv_inference_count"), key=lambda x: x["model"]) == [
            {"model": name, "version": "1"} for name in sorted(models)
        ]
        # all four failure reasons exist before any failure
        failure = m.labelsets("nv_inference_request_failure")
        assert len(failure) == 12
        assert {(lab["model"], lab["reason"]) for lab in failure} == {(n, r) for n in models for r in REASONS}
        assert all(v == 0 for _, v in m.samples("nv_inference_request_failure"))
        assert m.value("nv_inference_pending_request_count", model="add_sub_onnx", version="1") == 0
        assert m.value("nv_model_load_duration_secs", model="add_sub_onnx", version="1") > 0
        # summaries and histograms are off by default; CPU metrics on; no GPU on this machine
        assert not any(name.endswith("_summary_us") or name.endswith("_histogram_ms") for name in m.families)
        assert m.type("nv_cpu_utilization") == "gauge"


def test_exact_values_after_success_backend_and_validation_failures(repo: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo) as engine:
        for _ in range(5):
            engine.infer("identity_py", x4())
        for _ in range(2):
            with pytest.raises(InternalError):
                engine.infer("raising_py", x4(-1))  # the model raises: BACKEND
        engine.infer("raising_py", x4(1))
        for bad in ({"WRONG": np.ones(4, np.float32)}, {"INPUT0": np.ones(3, np.float32)}):
            with pytest.raises(InvalidArgumentError):
                engine.infer("identity_py", bad)  # rejected by validation: OTHER
        m = scrape(engine)
        ident = {"model": "identity_py", "version": "1"}
        raising = {"model": "raising_py", "version": "1"}
        assert m.value("nv_inference_request_success", **ident) == 5
        assert m.value("nv_inference_count", **ident) == 5
        assert m.value("nv_inference_exec_count", **ident) == 5
        assert {r: m.value("nv_inference_request_failure", reason=r, **ident) for r in REASONS} == {
            "REJECTED": 0, "CANCELED": 0, "BACKEND": 0, "OTHER": 2}
        assert m.value("nv_inference_request_success", **raising) == 1
        assert {r: m.value("nv_inference_request_failure", reason=r, **raising) for r in REASONS} == {
            "REJECTED": 0, "CANCELED": 0, "BACKEND": 2, "OTHER": 0}
        assert m.value("nv_inference_exec_count", **raising) == 1  # failed executions are not counted (Triton)
        assert m.value("nv_inference_request_duration_us", **ident) > 0
        assert m.value("nv_inference_pending_request_count", **ident) == 0
        for model in ("identity_py", "raising_py"):
            assert_parity(engine, scrape, model)


def test_batched_requests_count_inferences_and_executions(repo: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo) as engine:
        for rows in (1, 3, 8):
            x = np.ones((rows, 16), np.float32)
            engine.infer("add_sub_onnx", {"INPUT0": x, "INPUT1": x})
        m = scrape(engine)
        labels = {"model": "add_sub_onnx", "version": "1"}
        assert m.value("nv_inference_request_success", **labels) == 3
        assert m.value("nv_inference_count", **labels) == 12
        assert m.value("nv_inference_exec_count", **labels) == 3
        assert_parity(engine, scrape, "add_sub_onnx")


def test_dynamic_batch_is_one_execution_and_pending_counts_the_queue(tmp_path: Path, gate, scrape) -> None:  # type: ignore[no-untyped-def]
    gate_model(tmp_path, scheduling="dynamic_batching { }")
    with InferenceEngine(tmp_path) as engine:
        gate.hold(0)
        first = engine.submit("gate", tagged(0))
        gate.wait_for_batches(1)  # executing: not pending
        queued = [engine.submit("gate", tagged(t, rows=2)) for t in (1, 2, 3)]
        labels = {"model": "gate", "version": "1"}
        assert scrape(engine).value("nv_inference_pending_request_count", **labels) == 3
        gate.release()
        for f in [first, *queued]:
            f.result(timeout=20)
        assert gate.batches == [[0], [1, 2, 3]]
        m = scrape(engine)
        assert m.value("nv_inference_pending_request_count", **labels) == 0
        assert m.value("nv_inference_request_success", **labels) == 4
        assert m.value("nv_inference_count", **labels) == 7  # 1 + 3 requests of 2 rows
        assert m.value("nv_inference_exec_count", **labels) == 2
        assert_parity(engine, scrape, "gate")


def test_cancelled_queued_request_is_canceled(tmp_path: Path, gate, scrape) -> None:  # type: ignore[no-untyped-def]
    gate_model(tmp_path)  # default scheduler: one instance, one FIFO queue
    with InferenceEngine(tmp_path) as engine:
        gate.hold(0)
        first = engine.submit("gate", tagged(0))
        gate.wait_for_batches(1)
        doomed = engine.submit("gate", tagged(1))
        labels = {"model": "gate", "version": "1"}
        assert scrape(engine).value("nv_inference_pending_request_count", **labels) == 1
        assert doomed.cancel()
        gate.release()
        first.result(timeout=20)
        engine.infer("gate", tagged(2))  # runs after the cancelled one was dropped
        m = scrape(engine)
        assert {r: m.value("nv_inference_request_failure", reason=r, **labels) for r in REASONS} == {
            "REJECTED": 0, "CANCELED": 1, "BACKEND": 0, "OTHER": 0}
        assert m.value("nv_inference_request_success", **labels) == 2
        assert m.value("nv_inference_pending_request_count", **labels) == 0
        assert gate.batches == [[0], [2]]
        assert_parity(engine, scrape, "gate")


def test_rejected_by_a_full_queue_and_by_a_queue_timeout(tmp_path: Path, gate, scrape) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tritonlite.scheduling.dynamic", reason="queue policies come with the dynamic batcher")
    policy = "dynamic_batching { default_queue_policy { max_queue_size: 2 } }"
    gate_model(tmp_path, scheduling=policy)
    gate_model(tmp_path, "gate_timeout", scheduling="dynamic_batching { default_queue_policy { default_timeout_microseconds: 1000 } }")
    with InferenceEngine(tmp_path) as engine:
        gate.hold(0)
        first = engine.submit("gate", tagged(0))
        gate.wait_for_batches(1)
        ok = [engine.submit("gate", tagged(t)) for t in (1, 2)]
        refused = engine.submit("gate", tagged(3))
        with pytest.raises(UnavailableError, match="Exceeds maximum queue size"):
            refused.result(timeout=20)
        labels = {"model": "gate", "version": "1"}
        assert scrape(engine).value("nv_inference_pending_request_count", **labels) == 2
        gate.release()
        for f in [first, *ok]:
            f.result(timeout=20)
        m = scrape(engine)
        assert {r: m.value("nv_inference_request_failure", reason=r, **labels) for r in REASONS} == {
            "REJECTED": 1, "CANCELED": 0, "BACKEND": 0, "OTHER": 0}
        assert m.value("nv_inference_pending_request_count", **labels) == 0
        assert_parity(engine, scrape, "gate")

        gate.hold(10)
        seen = len(gate.batches)
        blocker = engine.submit("gate_timeout", tagged(10))
        gate.wait_for_batches(seen + 1)
        late = engine.submit("gate_timeout", tagged(11))
        time.sleep(0.05)  # let its 1 ms queue timeout expire while the instance is busy
        gate.release()
        blocker.result(timeout=20)
        with pytest.raises(UnavailableError, match="Request timeout expired"):
            late.result(timeout=20)
        timeout_labels = {"model": "gate_timeout", "version": "1"}
        m = scrape(engine)
        assert m.value("nv_inference_request_failure", reason="REJECTED", **timeout_labels) == 1
        assert m.value("nv_inference_pending_request_count", **timeout_labels) == 0


def test_statistics_and_metrics_agree_under_concurrent_traffic(repo: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo) as engine:
        errors: list[BaseException] = []

        def client(seed: int) -> None:
            rng = np.random.default_rng(seed)
            futs = []
            for i in range(40):
                sign = -1.0 if rng.random() < 0.3 else 1.0
                futs.append(engine.submit("raising_py", x4(sign)))
                futs.append(engine.submit("identity_py", x4()))
            for f in futs:
                try:
                    f.result(timeout=20)
                except InternalError:
                    pass
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        s = engine.model_statistics("raising_py")["model_stats"][0]["inference_stats"]
        assert s["success"]["count"] + s["fail"]["count"] == 160 and s["fail"]["count"] > 0
        m = scrape(engine)
        assert m.value("nv_inference_request_failure", model="raising_py", version="1", reason="BACKEND") == s["fail"]["count"]
        for model in ("raising_py", "identity_py"):
            assert_parity(engine, scrape, model)
            assert m.value("nv_inference_pending_request_count", model=model, version="1") == 0


def test_metric_tags_become_underscore_labels(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    extra = 'metric_tags [ { key: "team" value: "vision" }, { key: "tier" value: "gold" } ]'
    write_model(tmp_path, "tagged_py", identity_py_config("tagged_py", extra=extra), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path) as engine:
        engine.infer("tagged_py", x4())
        m = scrape(engine)
        expected = {"model": "tagged_py", "version": "1", "_team": "vision", "_tier": "gold"}
        assert m.labelsets("nv_inference_request_success") == [expected]
        assert m.value("nv_inference_request_success", **expected) == 1
        assert {lab["reason"] for lab in m.labelsets("nv_inference_request_failure")} == set(REASONS)
        assert all({k: v for k, v in lab.items() if k != "reason"} == expected for lab in m.labelsets("nv_inference_request_failure"))
        assert m.labelsets("nv_model_load_duration_secs") == [expected]
        assert '{_team="vision",_tier="gold",model="tagged_py",version="1"}' in m.text  # prometheus-cpp's label order


def test_series_follow_load_and_unload(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    write_model(tmp_path, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY, "2/model.py": IDENTITY_PY})
    write_model(tmp_path, "other_py", identity_py_config("other_py"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path, model_control_mode="explicit") as engine:
        assert scrape(engine).models() == set()
        engine.load_model("identity_py")
        m = scrape(engine)
        assert m.labelsets("nv_inference_count") == [{"model": "identity_py", "version": "2"}]
        engine.infer("identity_py", x4())
        engine.load_model("identity_py", config={"version_policy": {"all": {}}, "backend": "python",
                                                 "input": [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [4]}],
                                                 "output": [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]}]})
        m = scrape(engine)
        assert sorted(lab["version"] for lab in m.labelsets("nv_inference_count")) == ["1", "2"]
        # a reload is a new model version object: like the statistics API, its counts start again
        assert m.value("nv_inference_request_success", model="identity_py", version="2") == 0
        engine.load_model("other_py")
        engine.unload_model("identity_py")
        m = scrape(engine)
        assert m.models() == {"other_py"}
        assert "identity_py" not in m.text


def test_two_engines_do_not_share_series(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    a, b = tmp_path / "a", tmp_path / "b"
    write_model(a, "only_a", identity_py_config("only_a"), {"1/model.py": IDENTITY_PY})
    write_model(b, "only_b", identity_py_config("only_b"), {"1/model.py": IDENTITY_PY})
    write_model(b, "raising_py", identity_py_config("raising_py"), {"1/model.py": RAISING_PY})
    with InferenceEngine(a) as ea, InferenceEngine(b) as eb:
        for _ in range(3):
            ea.infer("only_a", x4())
        eb.infer("only_b", x4())
        ma, mb = scrape(ea), scrape(eb)
        assert ma.models() == {"only_a"} and mb.models() == {"only_b", "raising_py"}
        assert ma.value("nv_inference_request_success", model="only_a", version="1") == 3
        assert mb.value("nv_inference_request_success", model="only_b", version="1") == 1
        assert ea.metrics_registry is not eb.metrics_registry


def test_counter_latencies_can_be_turned_off(repo: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo, metrics_config=["counter_latencies=false"], cpu_metrics=False, gpu_metrics=False) as engine:
        engine.infer("identity_py", x4())
        m = scrape(engine)
        assert not any(name in m.families for name in DURATIONS)
        assert m.value("nv_inference_request_success", model="identity_py", version="1") == 1
        assert "nv_cpu_utilization" not in m.families


def test_metrics_disabled(repo: Path, no_thread_leak) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo, metrics=False) as engine:
        assert not engine.metrics_enabled
        engine.infer("identity_py", x4())
        with pytest.raises(UnsupportedError, match="metrics are disabled"):
            engine.metrics()
        # no pending accounting without metrics: the statistics API is unaffected
        assert engine.model_statistics("identity_py")["model_stats"][0]["inference_stats"]["success"]["count"] == 1
        assert "tritonlite.metrics.poll" not in no_thread_leak()
    assert no_thread_leak() == []


def test_ensemble_reports_its_own_requests(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tritonlite.scheduling.ensemble", reason="ensembles come with the ensemble scheduler")
    add_onnx_model(tmp_path)
    write_model(tmp_path, "ens", """
        name: "ens"
        platform: "ensemble"
        max_batch_size: 8
        input [ { name: "A" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "B" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "SUM" data_type: TYPE_FP32 dims: [ 16 ] } ]
        ensemble_scheduling { step [ { model_name: "add_sub_onnx" model_version: -1
            input_map { key: "INPUT0" value: "A" } input_map { key: "INPUT1" value: "B" }
            output_map { key: "OUTPUT0" value: "SUM" } } ] }
    """, {"1/.keep": ""})
    with InferenceEngine(tmp_path) as engine:
        x = np.ones((2, 16), np.float32)
        for _ in range(3):
            engine.infer("ens", {"A": x, "B": x})
        with pytest.raises(InvalidArgumentError):
            engine.infer("ens", {"A": x})
        m = scrape(engine)
        ens = {"model": "ens", "version": "1"}
        assert m.value("nv_inference_request_success", **ens) == 3
        assert m.value("nv_inference_request_failure", reason="OTHER", **ens) == 1
        assert m.value("nv_inference_pending_request_count", **ens) == 0
        assert m.value("nv_inference_request_success", model="add_sub_onnx", version="1") == 3
        assert m.value("nv_inference_pending_request_count", model="add_sub_onnx", version="1") == 0
        assert_parity(engine, scrape, "ens")

