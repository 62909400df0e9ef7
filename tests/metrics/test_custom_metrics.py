"""Custom metrics from Python models: ``pb_utils.MetricFamily`` (counter, gauge, histogram) on the engine's endpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tritonlite import InferenceEngine
from tritonlite.backends.python import pb_utils
from tritonlite.backends.python._context import CURRENT, ModelContext

from model_repos import IDENTITY_PY, identity_py_config, write_model

CUSTOM_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        labels = {"model": args["model_name"], "version": args["model_version"]}
        requests = pb_utils.MetricFamily(name="custom_requests", description="Requests seen", kind=pb_utils.MetricFamily.COUNTER)
        last = pb_utils.MetricFamily("custom_last_value", "First element of the last request", pb_utils.MetricFamily.GAUGE)
        values = pb_utils.MetricFamily("custom_values", "First elements seen", pb_utils.MetricFamily.HISTOGRAM)
        self.count = requests.Metric(labels=labels)
        self.gauge = last.Metric(labels=labels)
        self.hist = values.Metric(labels=labels, buckets=[1.0, 5.0, 10.0])
        self.unlabelled = requests.Metric()

    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            v = float(x.reshape(-1)[0])
            self.count.increment(1)
            self.unlabelled.increment(0.5)
            self.gauge.set(v)
            self.hist.observe(v)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
        return out
"""


def custom_repo(root: Path, *names: str) -> Path:
    for name in names or ("custom_py",):
        write_model(root, name, identity_py_config(name), {"1/model.py": CUSTOM_PY})
    return root


def send(engine: InferenceEngine, model: str, *values: float) -> None:
    for v in values:
        engine.infer(model, {"INPUT0": np.full(4, v, np.float32)})


def test_counter_gauge_histogram_from_a_model(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    custom_repo(tmp_path)
    with InferenceEngine(tmp_path) as engine:
        send(engine, "custom_py", 0.5, 3, 7, 20)
        m = scrape(engine)
        labels = {"model": "custom_py", "version": "1"}
        assert m.type("custom_requests") == "counter"
        assert m.value("custom_requests", **labels) == 4
        assert sorted(m.labelsets("custom_requests"), key=len) == [{}, labels]
        assert [v for lab, v in m.samples("custom_requests") if not lab] == [2.0]
        assert m.type("custom_last_value") == "gauge" and m.value("custom_last_value", **labels) == 20
        assert m.type("custom_values") == "histogram"
        assert m.value("custom_values", "_count", **labels) == 4
        assert m.value("custom_values", "_sum", **labels) == 30.5
        assert {lab["le"]: v for lab, v in m.samples("custom_values", "_bucket")} == {"1": 1, "5": 2, "10": 3, "+Inf": 4}
        assert "# HELP custom_last_value First element of the last request" in m.text
        # the built-in families come first, the custom ones after them
        assert m.text.index("nv_inference_request_success") < m.text.index("custom_requests")


def test_families_are_per_engine_and_removed_on_unload(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    custom_repo(tmp_path / "a", "custom_py")
    write_model(tmp_path / "b", "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    with InferenceEngine(tmp_path / "a", model_control_mode="explicit", startup_models=["*"]) as ea, \
            InferenceEngine(tmp_path / "b") as eb:
        send(ea, "custom_py", 1)
        assert "custom_requests" in scrape(ea).families
        assert "custom_requests" not in scrape(eb).families
        ea.unload_model("custom_py")
        assert not [name for name in scrape(ea).families if name.startswith("custom_")]
        ea.load_model("custom_py")  # a fresh load registers them again, from zero
        send(ea, "custom_py", 2)
        assert scrape(ea).value("custom_requests", model="custom_py", version="1") == 1


def test_two_models_share_a_family_by_name(tmp_path: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    custom_repo(tmp_path, "first_py", "second_py")
    with InferenceEngine(tmp_path, model_control_mode="explicit", startup_models=["*"]) as engine:
        send(engine, "first_py", 1, 1)
        send(engine, "second_py", 1)
        m = scrape(engine)
        assert m.value("custom_requests", model="first_py", version="1") == 2
        assert m.value("custom_requests", model="second_py", version="1") == 1
        assert [v for lab, v in m.samples("custom_requests") if not lab] == [1.5]  # one shared unlabelled series
        engine.unload_model("first_py")
        m = scrape(engine)
        assert m.labelsets("custom_requests") in ([{}, {"model": "second_py", "version": "1"}],
                                                  [{"model": "second_py", "version": "1"}, {}])


def test_metric_semantics_and_errors() -> None:
    """Outside a model a family works but is shown nowhere; core's rules and messages apply."""
    counter = pb_utils.MetricFamily("t_counter", "c", pb_utils.MetricFamily.COUNTER).Metric(labels={"a": "1"})
    counter.increment(2)
    counter.increment(0.5)
    assert counter.value() == 2.5
    with pytest.raises(pb_utils.TritonModelException, match="can only be incremented monotonically"):
        counter.increment(-1)
    with pytest.raises(pb_utils.TritonModelException, match="COUNTER does not support Set"):
        counter.set(1)
    with pytest.raises(pb_utils.TritonModelException, match="COUNTER does not support Observe"):
        counter.observe(1)
    gauge_family = pb_utils.MetricFamily("t_gauge", "g", pb_utils.MetricFamily.GAUGE)
    gauge = gauge_family.Metric()
    gauge.increment(-3)
    gauge.set(7)
    gauge.increment(-2)
    assert gauge.value() == 5
    assert gauge_family.Metric().value() == 5  # same labels, same series
    hist_family = pb_utils.MetricFamily("t_hist", "h", pb_utils.MetricFamily.HISTOGRAM)
    with pytest.raises(pb_utils.TritonModelException, match="Bucket boundaries not found"):
        hist_family.Metric(labels={"a": "1"})
    hist = hist_family.Metric(labels={"a": "1"}, buckets=[1, 2])
    hist.observe(1.5)
    with pytest.raises(pb_utils.TritonModelException, match="HISTOGRAM does not support Value"):
        hist.value()
    with pytest.raises(pb_utils.TritonModelException, match="HISTOGRAM does not support Increment"):
        hist.increment(1)
    with pytest.raises(pb_utils.TritonModelException, match="Unexpected args"):
        gauge_family.Metric(buckets=[1.0])
    with pytest.raises(pb_utils.TritonModelException, match="TRITONSERVER_PARAMETER_STRING"):
        gauge_family.Metric(labels={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(pb_utils.TritonModelException, match="Invalid label name"):
        gauge_family.Metric(labels={"bad-name": "x"})
    with pytest.raises(pb_utils.TritonModelException, match="Invalid metric name"):
        pb_utils.MetricFamily("bad name", "x", pb_utils.MetricFamily.GAUGE)
    with pytest.raises(pb_utils.TritonModelException, match="Unsupported kind"):
        pb_utils.MetricFamily("t_kind", "x", 7)


def test_registration_rules_in_an_engine(repo: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo) as engine:
        token = CURRENT.set(ModelContext("identity_py", 1, str(repo / "identity_py"), "identity_py_0", engine))
        try:
            fam = pb_utils.MetricFamily("t_shared", "help", pb_utils.MetricFamily.GAUGE)
            again = pb_utils.MetricFamily("t_shared", "help", pb_utils.MetricFamily.GAUGE)
            fam.Metric(labels={"k": "v"}).set(4)
            assert again.Metric(labels={"k": "v"}).value() == 4
            with pytest.raises(pb_utils.TritonModelException, match="already exists"):
                pb_utils.MetricFamily("t_shared", "help", pb_utils.MetricFamily.COUNTER)
            with pytest.raises(pb_utils.TritonModelException, match="already exists"):
                pb_utils.MetricFamily("t_shared", "other help", pb_utils.MetricFamily.GAUGE)
            with pytest.raises(pb_utils.TritonModelException, match="built-in"):
                pb_utils.MetricFamily("nv_inference_count", "x", pb_utils.MetricFamily.COUNTER)
        finally:
            CURRENT.reset(token)
        m = scrape(engine)
        assert m.value("t_shared", k="v") == 4
        metric = fam.Metric(labels={"k": "v"})
    # the engine unloaded identity_py: what it created is gone and its objects are invalidated
    with pytest.raises(pb_utils.TritonModelException, match="Metric has been invalidated"):
        metric.set(1)
    with pytest.raises(pb_utils.TritonModelException, match="removed"):
        fam.Metric(labels={"k": "w"})


def test_families_of_an_engine_without_metrics_are_detached(repo: Path) -> None:
    with InferenceEngine(repo, metrics=False) as engine:
        token = CURRENT.set(ModelContext("identity_py", 1, str(repo / "identity_py"), "identity_py_0", engine))
        try:
            metric = pb_utils.MetricFamily("t_detached", "d", pb_utils.MetricFamily.COUNTER).Metric()
        finally:
            CURRENT.reset(token)
        metric.increment(3)
        assert metric.value() == 3
