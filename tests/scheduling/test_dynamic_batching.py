"""Dynamic batching end to end with real model.py files and real onnxruntime.

Determinism: a Python "probe" model records every execution (instance, request tags) and blocks while
any of its tags is held. Holding the first request keeps the only instance busy, so the requests sent
next are all queued when it is released, and the batches they form are exact. Assertions are on
counts, orders and states; sleeps only make queue timeouts expire, never measure anything.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest

from tritonlite import InferenceEngine, UnavailableError
from tritonlite.errors import CancelledError

from model_repos import onnx_models, write_model

PROBE_MODULE = "tl_dynbatch_probe"

PROBE_PY = """
import json
import sys

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.instance = args["model_instance_name"]
        self.batching = json.loads(args["model_config"])["max_batch_size"] > 0

    def execute(self, requests):
        xs = [pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy() for r in requests]
        sys.modules["tl_dynbatch_probe"].PROBE.executed(self.instance, [int(x.reshape(-1)[0]) for x in xs])
        out = []
        for x in xs:
            n = np.full((x.shape[0], 1) if self.batching else (1,), len(requests), np.int32)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x), pb_utils.Tensor("COUNT", n)]))
        return out
"""


class Probe:
    """What the probe model saw, and the gate it waits on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.batches: list[list[int]] = []
        self.instances: list[str] = []
        self.held: set[int] = set()

    def executed(self, instance: str, tags: list[int]) -> None:
        with self.cond:
            self.batches.append(tags)
            self.instances.append(instance)
            self.cond.notify_all()
            self.cond.wait_for(lambda: not self.held.intersection(tags), timeout=20)

    def hold(self, *tags: int) -> None:
        with self.cond:
            self.held.update(tags)

    def release(self, *tags: int) -> None:
        with self.cond:
            self.held.difference_update(tags or set(self.held))
            self.cond.notify_all()

    def wait_for_batches(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.batches) >= n, timeout=20), self.batches


@pytest.fixture
def probe() -> Iterator[Probe]:
    module = types.ModuleType(PROBE_MODULE)
    module.PROBE = Probe()  # type: ignore[attr-defined]
    sys.modules[PROBE_MODULE] = module
    try:
        yield module.PROBE  # type: ignore[attr-defined]
    finally:
        module.PROBE.release()  # type: ignore[attr-defined]
        sys.modules.pop(PROBE_MODULE, None)


def probe_model(
    root: Path,
    name: str = "probe",
    *,
    max_batch: int = 8,
    dims: str = "[ -1 ]",
    batching: str = "{ }",
    instances: int = 1,
    input_extra: str = "",
    more_inputs: str = "",
) -> Path:
    write_model(root, name, f"""
        name: "{name}"
        backend: "python"
        max_batch_size: {max_batch}
        input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: {dims} {input_extra} }} {more_inputs} ]
        output [
          {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: {dims} }},
          {{ name: "COUNT" data_type: TYPE_INT32 dims: [ 1 ] }}
        ]
        instance_group [ {{ kind: KIND_CPU count: {instances} }} ]
        dynamic_batching {batching}
    """, {"1/model.py": PROBE_PY})
    return root


def tagged(tag: int, rows: int = 1, width: int = 1, batched: bool = True) -> dict[str, np.ndarray]:
    x = np.full((rows, width) if batched else (width,), tag, np.float32)
    return {"INPUT0": x}


def stats(engine: InferenceEngine, name: str = "probe") -> dict[str, Any]:
    return engine.model_statistics(name)["model_stats"][0]


def batch_sizes(s: dict[str, Any]) -> dict[int, int]:
    return {b["batch_size"]: b["compute_infer"]["count"] for b in s["batch_stats"]}


def block_instance(
    engine: InferenceEngine, probe: Probe, tag: int = 0, batched: bool = True, width: int = 1, **options: Any
) -> Any:
    """Send a request the probe holds, and wait until the instance is executing it."""
    probe.hold(tag)
    fut = engine.submit("probe", tagged(tag, width=width, batched=batched), **options)
    probe.wait_for_batches(1)
    return fut


# ---- batch forming -----------------------------------------------------------------------------------

def test_queued_requests_form_batches_up_to_max_batch_size(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=4)
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        futs = [engine.submit("probe", tagged(t)) for t in range(1, 11)]
        probe.release()
        results = [f.result(timeout=20) for f in [first, *futs]]
        assert probe.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
        counts = [int(r.as_numpy("COUNT")[0, 0]) for r in results]
        assert counts == [1, 4, 4, 4, 4, 4, 4, 4, 4, 2, 2]
        for t, r in enumerate(results):
            np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), tagged(t)["INPUT0"])
        s = stats(engine)
        assert s["execution_count"] == 4 and s["inference_count"] == 11
        assert batch_sizes(s) == {1: 1, 2: 1, 4: 2}
        assert s["inference_stats"]["success"]["count"] == 11


def test_preferred_batch_size_cuts_the_batch(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=8, batching="{ preferred_batch_size: [ 2, 3 ] }")
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        futs = [engine.submit("probe", tagged(t)) for t in range(1, 8)]
        probe.release()
        for f in [first, *futs]:
            f.result(timeout=20)
        # largest preferred size reachable wins; the rest goes out at once (no queue delay)
        assert probe.batches == [[0], [1, 2, 3], [4, 5, 6], [7]]


def test_queue_delay_waits_for_a_preferred_batch(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=8, batching="{ preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 60000000 }")
    with InferenceEngine(tmp_path) as engine:
        futs = [engine.submit("probe", tagged(t)) for t in range(1, 4)]
        time.sleep(0.05)
        assert probe.batches == [] and not any(f.done() for f in futs)  # an idle instance, yet it waits
        futs.append(engine.submit("probe", tagged(4)))
        for f in futs:
            f.result(timeout=20)
        assert probe.batches == [[1, 2, 3, 4]]


def test_expired_queue_delay_sends_what_is_pending(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=8, batching="{ preferred_batch_size: [ 8 ] max_queue_delay_microseconds: 20000 }")
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)  # a lone request goes out once its delay has passed
        futs = [engine.submit("probe", tagged(t)) for t in (1, 2, 3)]
        time.sleep(0.05)
        probe.release()
        for f in [first, *futs]:
            f.result(timeout=20)
        assert probe.batches == [[0], [1, 2, 3]]


def test_large_requests_are_packed_whole_never_split(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=4, dims="[ 2 ]")
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe, width=2)
        sizes = {1: 3, 2: 2, 3: 1, 4: 4}
        inputs = {t: np.full((n, 2), t, np.float32) for t, n in sizes.items()}
        futs = {t: engine.submit("probe", {"INPUT0": x}) for t, x in inputs.items()}
        probe.release()
        first.result(timeout=20)
        for t, f in futs.items():
            np.testing.assert_array_equal(f.result(timeout=20).as_numpy("OUTPUT0"), inputs[t])
        assert probe.batches == [[0], [1], [2, 3], [4]]
        s = stats(engine)
        assert batch_sizes(s) == {1: 1, 3: 2, 4: 1}
        assert s["inference_count"] == 11 and s["execution_count"] == 4


def test_requests_with_different_shapes_are_not_mixed(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=8)
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        widths = {1: 2, 2: 2, 3: 3, 4: 2, 5: 2}
        futs = [engine.submit("probe", tagged(t, rows=1 + t % 2, width=w)) for t, w in widths.items()]
        probe.release()
        for f in [first, *futs]:
            f.result(timeout=20)
        # the batch dim may differ; a different non-batch shape ends the batch (no skipping ahead)
        assert probe.batches == [[0], [1, 2], [3], [4, 5]]


def test_ragged_inputs_may_be_mixed(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=8, input_extra="allow_ragged_batch: true")
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        futs = [engine.submit("probe", tagged(t, width=t)) for t in (1, 2, 3, 4)]
        probe.release()
        for t, f in zip((1, 2, 3, 4), futs):
            assert f.result(timeout=20).as_numpy("OUTPUT0").shape == (1, t)
        first.result(timeout=20)
        assert probe.batches == [[0], [1, 2, 3, 4]]


def test_requests_with_different_optional_inputs_are_not_mixed(tmp_path: Path, probe: Probe) -> None:
    extra = ', { name: "INPUT1" data_type: TYPE_FP32 dims: [ 1 ] optional: true }'
    probe_model(tmp_path, max_batch=8, dims="[ 1 ]", more_inputs=extra)
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        with_1 = lambda t: {**tagged(t), "INPUT1": np.zeros((1, 1), np.float32)}  # noqa: E731
        futs = [engine.submit("probe", x) for x in (tagged(1), tagged(2), with_1(3), with_1(4), tagged(5))]
        probe.release()
        for f in [first, *futs]:
            f.result(timeout=20)
        assert probe.batches == [[0], [1, 2], [3, 4], [5]]


def test_python_model_gets_the_batch_as_a_list_with_2_instances(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=8, instances=2)
    with InferenceEngine(tmp_path) as engine:
        probe.hold(0, 1)
        a = engine.submit("probe", tagged(0))
        probe.wait_for_batches(1)
        b = engine.submit("probe", tagged(1))  # the second, idle instance takes it
        probe.wait_for_batches(2)
        futs = [engine.submit("probe", tagged(t)) for t in range(2, 7)]
        probe.release()
        for f in [a, b, *futs]:
            f.result(timeout=20)
        assert probe.batches[:2] == [[0], [1]] and len(set(probe.instances[:2])) == 2
        assert sorted(t for batch in probe.batches[2:] for t in batch) == [2, 3, 4, 5, 6]
        assert stats(engine)["inference_count"] == 7


# ---- priorities and queue policies ---------------------------------------------------------------------

PRIORITY_BATCHING = "{ priority_levels: 3 default_priority_level: 2 }"


def test_priority_levels_order_execution(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=0, dims="[ 1 ]", batching=PRIORITY_BATCHING)
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe, batched=False, priority=3)
        # 0 and out-of-range priorities take the default level (core InferenceRequest::SetPriority)
        sent = {1: 3, 2: 0, 3: 1, 4: 2, 5: 99, 6: 1}
        futs = [engine.submit("probe", tagged(t, batched=False), priority=p) for t, p in sent.items()]
        probe.release()
        for f in [first, *futs]:
            f.result(timeout=20)
        # max_batch_size 0: one request per execution
        assert probe.batches == [[0], [3], [6], [2], [4], [5], [1]]
        assert batch_sizes(stats(engine)) == {1: 7}


def test_one_batch_takes_requests_in_priority_order(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=4, batching=PRIORITY_BATCHING)
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        sent = {1: 3, 2: 2, 3: 1, 4: 3, 5: 1}
        futs = [engine.submit("probe", tagged(t), priority=p) for t, p in sent.items()]
        probe.release()
        for f in [first, *futs]:
            f.result(timeout=20)
        assert probe.batches == [[0], [3, 5, 2, 1], [4]]


def test_max_queue_size_rejects_with_unavailable(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=8, batching="{ default_queue_policy { max_queue_size: 2 } }")
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        ok = [engine.submit("probe", tagged(t)) for t in (1, 2)]
        refused = engine.submit("probe", tagged(3))
        with pytest.raises(UnavailableError, match="Exceeds maximum queue size"):
            refused.result(timeout=20)
        probe.release()
        for f in [first, *ok]:
            f.result(timeout=20)
        assert probe.batches == [[0], [1, 2]]
        s = stats(engine)
        assert s["inference_stats"]["fail"]["count"] == 1 and s["inference_count"] == 3


def test_max_queue_size_is_per_priority_level(tmp_path: Path, probe: Probe) -> None:
    batching = """{
        priority_levels: 2 default_priority_level: 2
        priority_queue_policy { key: 1 value: { max_queue_size: 1 } }
    }"""
    probe_model(tmp_path, max_batch=8, batching=batching)
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        high = engine.submit("probe", tagged(1), priority=1)
        refused = engine.submit("probe", tagged(2), priority=1)
        low = [engine.submit("probe", tagged(t), priority=2) for t in (3, 4, 5)]
        with pytest.raises(UnavailableError, match="Exceeds maximum queue size"):
            refused.result(timeout=20)
        probe.release()
        for f in [first, high, *low]:
            f.result(timeout=20)
        assert probe.batches == [[0], [1, 3, 4, 5]]


# Level 1 has no timeout (the blocking request goes there); level 2 is the policy under test.
def _timeout_batching(policy: str) -> str:
    return f"{{ priority_levels: 2 default_priority_level: 2 default_queue_policy {{ {policy} }} " \
           "priority_queue_policy { key: 1 value: { } } }"


def test_timeout_reject_fails_expired_requests(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, batching=_timeout_batching("default_timeout_microseconds: 2000"))
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe, priority=1)
        expired = [engine.submit("probe", tagged(t)) for t in (1, 2)]
        time.sleep(0.05)
        probe.release()
        first.result(timeout=20)
        for f in expired:
            with pytest.raises(UnavailableError, match="Request timeout expired"):
                f.result(timeout=20)
        fresh = engine.submit("probe", tagged(3), priority=1)  # no timeout at level 1
        fresh.result(timeout=20)
        assert probe.batches == [[0], [3]]
        s = stats(engine)
        assert s["inference_stats"]["fail"]["count"] == 2 and s["inference_count"] == 2


def test_request_timeout_may_only_shorten_an_allowed_default(tmp_path: Path, probe: Probe) -> None:
    policy = "default_timeout_microseconds: 60000000 allow_timeout_override: true"
    probe_model(tmp_path, batching=_timeout_batching(policy))
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe, priority=1)
        short = engine.submit("probe", tagged(1), timeout_us=1000)
        default = engine.submit("probe", tagged(2))
        time.sleep(0.05)
        probe.release()
        first.result(timeout=20)
        with pytest.raises(UnavailableError, match="Request timeout expired"):
            short.result(timeout=20)
        default.result(timeout=20)
        assert probe.batches == [[0], [2]]


@pytest.mark.parametrize("policy", [
    "default_timeout_microseconds: 2000",  # override not allowed: the default applies
    "default_timeout_microseconds: 2000 allow_timeout_override: true",  # a longer override is ignored
])
def test_request_timeout_cannot_lengthen_the_default(tmp_path: Path, probe: Probe, policy: str) -> None:
    probe_model(tmp_path, batching=_timeout_batching(policy))
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe, priority=1)
        f = engine.submit("probe", tagged(1), timeout_us=60_000_000)
        time.sleep(0.05)
        probe.release()
        first.result(timeout=20)
        with pytest.raises(UnavailableError, match="Request timeout expired"):
            f.result(timeout=20)


@pytest.mark.parametrize("policy", ["allow_timeout_override: true", ""])
def test_without_a_default_timeout_request_timeouts_do_not_apply(tmp_path: Path, probe: Probe, policy: str) -> None:
    # core PolicyQueue::Enqueue only takes an override shorter than the default; 0 means no default
    probe_model(tmp_path, batching=_timeout_batching(policy))
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe, priority=1)
        f = engine.submit("probe", tagged(1), timeout_us=1000)
        time.sleep(0.05)
        probe.release()
        first.result(timeout=20)
        f.result(timeout=20)
        assert probe.batches == [[0], [1]]


def test_timeout_delay_moves_expired_requests_behind(tmp_path: Path, probe: Probe) -> None:
    policy = "timeout_action: DELAY default_timeout_microseconds: 60000000 allow_timeout_override: true"
    probe_model(tmp_path, max_batch=0, dims="[ 1 ]", batching=_timeout_batching(policy))
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe, batched=False, priority=1)
        futs = [engine.submit("probe", tagged(1, batched=False), timeout_us=1000),
                engine.submit("probe", tagged(2, batched=False), timeout_us=1000),
                engine.submit("probe", tagged(3, batched=False)),
                engine.submit("probe", tagged(4, batched=False))]
        time.sleep(0.05)
        probe.release()
        for f in [first, *futs]:
            f.result(timeout=20)  # delayed, not rejected
        assert probe.batches == [[0], [3], [4], [1], [2]]


def test_cancelled_queued_request_is_dropped(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=8)
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        futs = [engine.submit("probe", tagged(t)) for t in (1, 2, 3)]
        assert futs[1].cancel()
        probe.release()
        for f in [first, futs[0], futs[2]]:
            f.result(timeout=20)
        assert futs[1].cancelled()
        assert probe.batches == [[0], [1, 3]]
        assert stats(engine)["inference_count"] == 3


# ---- preserve_ordering -----------------------------------------------------------------------------------

@pytest.mark.parametrize("preserve", [True, False])
def test_preserve_ordering_releases_responses_in_enqueue_order(tmp_path: Path, probe: Probe, preserve: bool) -> None:
    batching = "{ preserve_ordering: true }" if preserve else "{ }"
    probe_model(tmp_path, max_batch=2, instances=2, batching=batching)
    with InferenceEngine(tmp_path) as engine:
        done: list[int] = []
        lock = threading.Lock()

        def track(tag: int) -> Callable[[Any], None]:
            def cb(_: Any) -> None:
                with lock:
                    done.append(tag)
            return cb

        slow = block_instance(engine, probe, tag=1)
        slow.add_done_callback(track(1))
        fast = engine.submit("probe", tagged(2))  # the other instance runs it at once
        fast.add_done_callback(track(2))
        probe.wait_for_batches(2)
        if preserve:
            time.sleep(0.05)
            assert not fast.done()  # finished executing, held behind the earlier request
        else:
            fast.result(timeout=20)
        probe.release()
        slow.result(timeout=20)
        fast.result(timeout=20)
        assert probe.batches == [[1], [2]] and len(set(probe.instances)) == 2
        assert done == ([1, 2] if preserve else [2, 1])


def test_preserve_ordering_many_batches_complete_in_order(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=3, instances=2, batching="{ preserve_ordering: true }")
    with InferenceEngine(tmp_path) as engine:
        done: list[int] = []
        futs = []
        for t in range(20):
            f = engine.submit("probe", tagged(t))
            f.add_done_callback(lambda _, t=t: done.append(t))
            futs.append(f)
        for f in futs:
            f.result(timeout=20)
        assert done == list(range(20))


# ---- ONNX, statistics, lifecycle ---------------------------------------------------------------------

ONNX_CONFIG = """
    name: "add_sub_db"
    platform: "onnxruntime_onnx"
    max_batch_size: 8
    input [
      { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
      { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] }
    ]
    output [
      { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] },
      { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] }
    ]
    instance_group [ { kind: KIND_CPU count: 1 } ]
    dynamic_batching { preferred_batch_size: [ 8 ] max_queue_delay_microseconds: 60000000 }
"""


def test_onnx_model_runs_one_batched_execution(tmp_path: Path) -> None:
    model_dir = write_model(tmp_path, "add_sub_db", ONNX_CONFIG)
    onnx_models.add_sub(model_dir / "1" / "model.onnx")
    rng = np.random.default_rng(7)
    with InferenceEngine(tmp_path) as engine:
        inputs = [(rng.random((n, 16), np.float32), rng.random((n, 16), np.float32)) for n in (1, 3, 2, 2)]
        futs = [engine.submit("add_sub_db", {"INPUT0": a, "INPUT1": b}) for a, b in inputs]
        for (a, b), f in zip(inputs, futs):  # 8 inferences reach the preferred size: no waiting
            r = f.result(timeout=20)
            np.testing.assert_allclose(r.as_numpy("OUTPUT0"), a + b, rtol=1e-6)
            np.testing.assert_allclose(r.as_numpy("OUTPUT1"), a - b, rtol=1e-6)
        s = stats(engine, "add_sub_db")
        assert s["execution_count"] == 1 and s["inference_count"] == 8
        assert batch_sizes(s) == {8: 1}
        # stopping runs what is still queued at once, without the 60 s delay
        a = np.ones((1, 16), np.float32)
        tail = [engine.submit("add_sub_db", {"INPUT0": a * i, "INPUT1": a}) for i in range(3)]
    for i, f in enumerate(tail):
        np.testing.assert_allclose(f.result(timeout=20).as_numpy("OUTPUT0"), a * i + a)


def test_stop_drains_queued_work_and_joins_threads(tmp_path: Path, probe: Probe, no_thread_leak: Callable[[], list[str]]) -> None:
    probe_model(tmp_path, max_batch=8, instances=2, batching="{ max_queue_delay_microseconds: 60000000 }")
    engine = InferenceEngine(tmp_path)
    try:
        names = set(no_thread_leak())
        assert {"tritonlite.probe.batcher", "tritonlite.probe.probe_0_0", "tritonlite.probe.probe_0_1"} <= names
        futs = [engine.submit("probe", tagged(t)) for t in (1, 2, 3)]
        time.sleep(0.02)
        assert probe.batches == []
    finally:
        engine.close()
    assert [f.result(timeout=0).as_numpy("OUTPUT0")[0, 0] for f in futs] == [1, 2, 3]
    assert probe.batches == [[1, 2, 3]]
    assert no_thread_leak() == []
    late = engine.submit("probe", tagged(4))
    with pytest.raises(UnavailableError):
        late.result(timeout=5)


def test_many_concurrent_callers_are_batched(tmp_path: Path, probe: Probe) -> None:
    probe_model(tmp_path, max_batch=8)
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        results: dict[int, Any] = {}

        def call(t: int) -> None:
            results[t] = engine.infer("probe", tagged(t))

        threads = [threading.Thread(target=call, args=(t,)) for t in range(1, 17)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 20
        while stats_queue_len(engine) < 16 and time.monotonic() < deadline:
            time.sleep(0.005)
        probe.release()
        for th in threads:
            th.join(20)
        first.result(timeout=20)
        assert sorted(results) == list(range(1, 17))
        for t, r in results.items():
            assert r.as_numpy("OUTPUT0")[0, 0] == t
        assert [len(b) for b in probe.batches] == [1, 8, 8]


def stats_queue_len(engine: InferenceEngine) -> int:
    """Requests waiting in the probe's queue (test-only peek at the scheduler)."""
    mv = engine._manager.get("probe", -1)  # noqa: SLF001
    return mv.scheduler._queues.size  # noqa: SLF001


def test_cancelled_error_type_is_kept(tmp_path: Path, probe: Probe) -> None:
    """A request cancelled at the core (not through its future) fails with CancelledError."""
    probe_model(tmp_path, max_batch=8)
    with InferenceEngine(tmp_path) as engine:
        first = block_instance(engine, probe)
        f = engine.submit("probe", tagged(1))
        assert f.request is not None
        f.request.cancel()
        probe.release()
        first.result(timeout=20)
        with pytest.raises(CancelledError):
            f.result(timeout=20)
        assert probe.batches == [[0]]
