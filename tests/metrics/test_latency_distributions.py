"""Optional latency summaries and the first-response histogram (``metrics_config``), and their sketches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine, InvalidArgumentError
from tritonlite.metrics import MetricsConfig
from tritonlite.metrics._distributions import RELATIVE_ERROR, Histogram, Summary, parse_quantiles

from model_repos import IDENTITY_PY, identity_py_config, write_model

SUMMARIES = {
    "nv_inference_request_summary_us": "success",
    "nv_inference_queue_summary_us": "queue",
    "nv_inference_compute_input_summary_us": "compute_input",
    "nv_inference_compute_infer_summary_us": "compute_infer",
    "nv_inference_compute_output_summary_us": "compute_output",
}

DECOUPLED_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for r in requests:
            sender = r.get_response_sender()
            for v in pb_utils.get_input_tensor_by_name(r, "IN").as_numpy().reshape(-1):
                sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([v], np.int32))]))
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
"""


def decoupled_model(root: Path, name: str = "repeat_py", extra: str = "") -> None:
    write_model(root, name, f"""
        name: "{name}"
        backend: "python"
        max_batch_size: 0
        input [ {{ name: "IN" data_type: TYPE_INT32 dims: [ -1 ] }} ]
        output [ {{ name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] }} ]
        model_transaction_policy {{ decoupled: true }}
        {extra}
    """, {"1/model.py": DECOUPLED_PY})


def x4() -> dict[str, np.ndarray]:
    return {"INPUT0": np.ones(4, np.float32)}


def test_summaries_when_enabled(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    write_model(tmp_path, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path, metrics_config={"summary_latencies": "true"}) as engine:
        for _ in range(7):
            engine.infer("identity_py", x4())
        m = scrape(engine)
        stats = engine.model_statistics("identity_py")["model_stats"][0]["inference_stats"]
        labels = {"model": "identity_py", "version": "1"}
        for name, key in SUMMARIES.items():
            assert m.type(name) == "summary"
            assert m.value(name, "_count", **labels) == 7 == stats[key]["count"]
            # the same timestamps: the sum of observations is the statistics' cumulative ns, in µs
            assert m.value(name, "_sum", **labels) == pytest.approx(stats[key]["ns"] / 1000.0, rel=1e-9, abs=1e-6)
            quantiles = {lab["quantile"]: v for lab, v in m.samples(name) if "quantile" in lab}
            assert set(quantiles) == {"0.5", "0.9", "0.95", "0.99", "0.999"}
            assert all(v >= 0 for v in quantiles.values())
            assert quantiles["0.5"] <= quantiles["0.999"]
        # the counters are still there (counter_latencies defaults to true)
        assert m.type("nv_inference_request_duration_us") == "counter"
        assert "nv_inference_first_response_histogram_ms" not in m.families


def test_summary_quantiles_setting(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    write_model(tmp_path, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    config = ["summary_latencies=true", "summary_quantiles=0.5:0.05,0.99:0.001"]
    with InferenceEngine(tmp_path, metrics_config=config) as engine:
        m = scrape(engine)  # no traffic yet: count 0, quantiles NaN (as prometheus-cpp)
        labels = {"model": "identity_py", "version": "1"}
        assert m.value("nv_inference_queue_summary_us", "_count", **labels) == 0
        values = {lab["quantile"]: v for lab, v in m.samples("nv_inference_queue_summary_us") if "quantile" in lab}
        assert set(values) == {"0.5", "0.99"} and all(math.isnan(v) for v in values.values())


def test_first_response_histogram_for_decoupled_models(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    decoupled_model(tmp_path)
    write_model(tmp_path, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path, metrics_config={"histogram_latencies": True}) as engine:
        for n in (3, 1, 2):
            outs = [r.as_numpy("OUT").tolist() for r in engine.stream_infer("repeat_py", {"IN": np.arange(n, dtype=np.int32)})]
            assert outs == [[i] for i in range(n)]
        engine.infer("identity_py", x4())
        m = scrape(engine)
        name = "nv_inference_first_response_histogram_ms"
        assert m.type(name) == "histogram"
        labels = {"model": "repeat_py", "version": "1"}
        assert m.labelsets(name, "_count") == [labels]  # only decoupled models have it (Triton)
        assert m.value(name, "_count", **labels) == 3
        buckets = {lab["le"]: v for lab, v in m.samples(name, "_bucket")}
        assert list(buckets) == ["100", "500", "2000", "5000", "+Inf"]
        assert buckets["+Inf"] == 3
        assert 0 < m.value(name, "_sum", **labels) < 3 * 5000
        assert m.value("nv_inference_request_success", **labels) == 3
        assert m.value("nv_inference_exec_count", **labels) == 3


def test_first_response_buckets_from_model_metrics(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    extra = """model_metrics { metric_control [ {
        metric_identifier { family: "nv_inference_first_response_histogram_ms" }
        histogram_options { buckets: [ 0.5, 10, 60000 ] } } ] }"""
    decoupled_model(tmp_path, extra=extra)
    with InferenceEngine(tmp_path, metrics_config={"histogram_latencies": True}) as engine:
        list(engine.stream_infer("repeat_py", {"IN": np.arange(2, dtype=np.int32)}))
        m = scrape(engine)
        buckets = {lab["le"]: v for lab, v in m.samples("nv_inference_first_response_histogram_ms", "_bucket")}
        assert list(buckets) == ["0.5", "10", "60000", "+Inf"]
        assert buckets["60000"] == buckets["+Inf"] == 1
    with InferenceEngine(tmp_path) as engine:  # off by default
        list(engine.stream_infer("repeat_py", {"IN": np.arange(2, dtype=np.int32)}))
        assert "nv_inference_first_response_histogram_ms" not in scrape(engine).families


# ---------------------------------------------------------------- config and sketches
def test_metrics_config_parsing() -> None:
    c = MetricsConfig({"summary_latencies": "true", "histogram_latencies": True, "counter_latencies": "false"})
    assert (c.summary_latencies, c.histogram_latencies, c.counter_latencies) == (True, True, False)
    c = MetricsConfig(["summary_quantiles=0.5:0.05,0.9:0.01"])
    assert c.summary_quantiles == ((0.5, 0.05), (0.9, 0.01)) and not c.summary_latencies
    assert MetricsConfig(None).summary_quantiles[0] == (0.5, 0.05)
    with pytest.raises(InvalidArgumentError, match="must be true or false"):
        MetricsConfig({"summary_latencies": "maybe"})
    with pytest.raises(InvalidArgumentError, match="summary_quantiles"):
        MetricsConfig({"summary_quantiles": "0.5"})
    with pytest.raises(InvalidArgumentError, match="<setting>=<value>"):
        MetricsConfig(["summary_latencies"])
    assert MetricsConfig({"no_such_setting": "1"}).counter_latencies  # ignored, as Triton does
    assert parse_quantiles("0.5:0.05 0.99:0.001") == ((0.5, 0.05), (0.99, 0.001))


def test_summary_quantiles_are_within_the_relative_error() -> None:
    s = Summary(((0.5, 0.05), (0.9, 0.01), (0.99, 0.001)), now_ns=0)
    values = np.random.default_rng(1).permutation(np.arange(1, 10_001, dtype=np.float64))
    for v in values:
        s.observe(float(v), 1)
    assert s.count == 10_000 and s.sum == pytest.approx(float(values.sum()))
    got = dict(s.values(2))
    for q, exact in ((0.5, 5000), (0.9, 9000), (0.99, 9900)):
        assert abs(got[q] - exact) <= RELATIVE_ERROR * exact + 1e-9, (q, got[q])


def test_summary_window_forgets_old_observations() -> None:
    second = 1_000_000_000
    s = Summary(((0.5, 0.05),), now_ns=0)
    for _ in range(100):
        s.observe(1000.0, 1 * second)
    assert s.values(30 * second)[0][1] == pytest.approx(1000.0, rel=RELATIVE_ERROR)
    s.observe(5.0, 61 * second)  # the 1000s are older than the 60 s window now
    assert s.values(61 * second)[0][1] == pytest.approx(5.0, rel=RELATIVE_ERROR)
    assert s.count == 101  # count and sum are cumulative, never windowed
    assert math.isnan(s.values(200 * second)[0][1])
    s.observe(0.0, 201 * second)
    assert s.values(201 * second)[0][1] == 0.0


def test_histogram_buckets() -> None:
    h = Histogram([10, 1, 5])
    for v in (0.5, 1, 3, 7, 50):
        h.observe(v)
    assert h.cumulative() == [(1.0, 2), (5.0, 3), (10.0, 4), (math.inf, 5)]
    assert (h.count, h.sum) == (5, 61.5)


def test_summaries_keep_count_under_concurrent_traffic(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    """Successes are buffered without a lock and taken in by batches (SUMMARY_FLUSH_AT) and at scrapes."""
    import threading

    from tritonlite.metrics.registry import SUMMARY_FLUSH_AT

    write_model(tmp_path, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    per_thread = SUMMARY_FLUSH_AT // 2 + 7
    with InferenceEngine(tmp_path, metrics_config={"summary_latencies": True}) as engine:
        def client() -> None:
            futs = [engine.submit("identity_py", x4()) for _ in range(per_thread)]
            for f in futs:
                f.result(timeout=30)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        mid = scrape(engine)  # scrapes race with the traffic
        for t in threads:
            t.join()
        assert mid.value("nv_inference_request_summary_us", "_count", model="identity_py", version="1") <= 4 * per_thread
        m = scrape(engine)
        stats = engine.model_statistics("identity_py")["model_stats"][0]["inference_stats"]
        for name, key in SUMMARIES.items():
            assert m.value(name, "_count", model="identity_py", version="1") == 4 * per_thread == stats[key]["count"]
            assert m.value(name, "_sum", model="identity_py", version="1") == pytest.approx(stats[key]["ns"] / 1000.0, rel=1e-9)


def test_summary_batches_drop_what_is_older_than_the_window() -> None:
    second = 1_000_000_000
    s = Summary(((0.5, 0.05),), now_ns=0)
    s.observe_many(np.array([7.0, 7.0]), np.array([1 * second, 2 * second]))
    s.observe_many(np.array([3.0, 100.0]), np.array([5 * second, 70 * second]))  # 5 s is out of the window at 70 s
    assert s.count == 4 and s.sum == 117.0
    assert s.values(70 * second)[0][1] == pytest.approx(100.0, rel=RELATIVE_ERROR)
    s.observe_many(np.array([]), np.array([], dtype=np.int64))
    assert s.count == 4
