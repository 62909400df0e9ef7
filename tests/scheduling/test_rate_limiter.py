"""Rate limiter (``rate_limit="execution_count"``) with real concurrent Python models.

The models record every execution (model, start, end) into a probe module; a "blocker" model waits
on an event so the requests sent meanwhile all wait on the limiter when it is released, which makes
the order of executions exact. No timing is asserted, only overlaps, counts and orders.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tritonlite import InferenceEngine
from tritonlite.errors import InvalidArgumentError
from tritonlite.protos import model_config_pb2 as mc
from tritonlite.scheduling.rate_limiter import RateLimiter, parse_resource

from model_repos import write_model

PROBE_MODULE = "tl_ratelimit_probe"

TIMED_PY = """
import sys
import threading
import time

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.model = args["model_name"]

    def execute(self, requests):
        probe = sys.modules["tl_ratelimit_probe"].PROBE
        start = time.monotonic_ns()
        probe.enter(self.model)
        try:
            probe.hold(self.model)
            time.sleep(probe.sleep_s)
        finally:
            probe.leave(self.model, start, time.monotonic_ns())
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
                for r in requests]
"""


class Probe:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.max_running = 0
        self.runs: list[tuple[str, int, int]] = []
        self.sleep_s = 0.01
        self.blocked: dict[str, threading.Event] = {}

    def enter(self, model: str) -> None:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)

    def hold(self, model: str) -> None:
        ev = self.blocked.get(model)
        if ev is not None:
            assert ev.wait(30), "test never released the blocker"

    def leave(self, model: str, start: int, end: int) -> None:
        with self.lock:
            self.running -= 1
            self.runs.append((model, start, end))

    def order(self) -> list[str]:
        return [m for m, _, _ in sorted(self.runs, key=lambda r: r[1])]


@pytest.fixture
def probe() -> Iterator[Probe]:
    p = Probe()
    sys.modules[PROBE_MODULE] = types.SimpleNamespace(PROBE=p)  # type: ignore[assignment]
    yield p
    sys.modules.pop(PROBE_MODULE, None)


def _config(name: str, resources: str = "", priority: int = 0, count: int = 1) -> str:
    rl = f"rate_limiter {{ resources [ {resources} ] priority: {priority} }}" if resources or priority else ""
    return f"""
        name: "{name}"
        backend: "python"
        max_batch_size: 0
        input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 1 ] }} ]
        output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 1 ] }} ]
        instance_group [ {{ kind: KIND_CPU count: {count} {rl} }} ]
    """


def _repo(root: Path, models: dict[str, str]) -> Path:
    for name, cfg in models.items():
        write_model(root, name, cfg, {"1/model.py": TIMED_PY})
    return root


def _flood(engine: InferenceEngine, plan: list[tuple[str, int]]) -> list[Any]:
    futs = []
    for model, n in plan:
        futs.extend(engine.submit(model, {"INPUT0": np.array([float(i)], np.float32)}) for i in range(n))
    return futs


def _overlaps(runs: list[tuple[str, int, int]]) -> list[tuple[Any, Any]]:
    runs = sorted(runs, key=lambda r: r[1])
    return [(a, b) for a, b in zip(runs, runs[1:]) if b[1] < a[2]]


def _wait_waiting(engine: InferenceEngine, n: int) -> None:
    deadline = time.monotonic() + 20
    while len(engine.rate_limiter.waiting()) < n:
        assert time.monotonic() < deadline, f"instances waiting: {engine.rate_limiter.waiting()}"
        time.sleep(0.005)


SHARED = '{ name: "R" count: 1 }'


def test_models_sharing_a_resource_of_count_one_never_overlap(tmp_path: Path, probe: Probe) -> None:
    repo = _repo(tmp_path, {"a": _config("a", SHARED), "b": _config("b", SHARED)})
    with InferenceEngine(repo, rate_limit="execution_count") as engine:
        assert engine.rate_limiter.resources() == {"0": {"R": 1}}
        futs = _flood(engine, [("a", 6), ("b", 6)])
        for f in futs:
            assert f.result(timeout=30).as_numpy("OUTPUT0").dtype == np.float32
        assert len(probe.runs) == 12
        assert probe.max_running == 1
        assert _overlaps(probe.runs) == []
        assert engine.rate_limiter.in_use() == {}
        assert engine.model_statistics("a")["model_stats"][0]["execution_count"] == 6


def test_same_models_overlap_when_rate_limit_is_off(tmp_path: Path, probe: Probe) -> None:
    """The control for the test above: without the limiter the two instances do run together."""
    probe.sleep_s = 0.05
    repo = _repo(tmp_path, {"a": _config("a", SHARED), "b": _config("b", SHARED)})
    with InferenceEngine(repo) as engine:
        assert engine.rate_limiter.enabled is False
        for f in _flood(engine, [("a", 3), ("b", 3)]):
            f.result(timeout=30)
    assert probe.max_running == 2


def test_count_two_lets_two_run_and_a_model_without_resources_is_never_held(tmp_path: Path, probe: Probe) -> None:
    probe.sleep_s = 0.05
    repo = _repo(tmp_path, {"a": _config("a", '{ name: "R" count: 1 }'), "b": _config("b", '{ name: "R" count: 1 }'),
                            "free": _config("free")})
    with InferenceEngine(repo, rate_limit="execution_count", rate_limit_resources=["R:2"]) as engine:
        assert engine.rate_limiter.resources() == {"0": {"R": 2}}
        for f in _flood(engine, [("a", 3), ("b", 3)]):
            f.result(timeout=30)
        assert probe.max_running == 2
        engine.infer("free", {"INPUT0": np.ones(1, np.float32)})


def _expected_order(priorities: dict[str, int], counts: dict[str, int], first: list[str]) -> list[str]:
    """Triton's choice: lowest executions*priority first, ties in the order the instances queued."""
    execs = dict.fromkeys(priorities, 0)
    left = dict(counts)
    queued = list(first)
    out = []
    while queued:
        pick = min(queued, key=lambda m: (execs[m] * priorities[m], queued.index(m)))
        queued.remove(pick)
        out.append(pick)
        execs[pick] += 1
        left[pick] -= 1
        if left[pick]:
            queued.append(pick)  # the instance has its next request at hand and queues again
    return out


def test_priority_weights_the_choice_across_models(tmp_path: Path, probe: Probe) -> None:
    """Priority 1 runs twice as often as priority 2 while both wait for the one resource."""
    probe.sleep_s = 0.002
    probe.blocked["blocker"] = threading.Event()
    repo = _repo(tmp_path, {"blocker": _config("blocker", SHARED), "hi": _config("hi", SHARED, priority=1),
                            "lo": _config("lo", SHARED, priority=2)})
    with InferenceEngine(repo, rate_limit="execution_count") as engine:
        first = _flood(engine, [("blocker", 1)])
        deadline = time.monotonic() + 20
        while probe.running == 0:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        futs = _flood(engine, [("hi", 12)])
        _wait_waiting(engine, 1)
        futs += _flood(engine, [("lo", 12)])
        _wait_waiting(engine, 2)
        assert engine.rate_limiter.waiting() == ["hi", "lo"]
        probe.blocked["blocker"].set()
        for f in first + futs:
            f.result(timeout=30)
    order = probe.order()[1:]
    assert order == _expected_order({"hi": 1, "lo": 2}, {"hi": 12, "lo": 12}, ["hi", "lo"])
    assert order[:18].count("hi") == 12 and order[:18].count("lo") == 6
    assert _overlaps(probe.runs) == []


def test_instances_of_one_model_share_by_priority_config(tmp_path: Path, probe: Probe) -> None:
    """Two instances of one model, each needing the whole resource: they alternate, never overlap."""
    probe.sleep_s = 0.005
    repo = _repo(tmp_path, {"two": _config("two", SHARED, count=2)})
    with InferenceEngine(repo, rate_limit="execution_count") as engine:
        for f in _flood(engine, [("two", 8)]):
            f.result(timeout=30)
    assert probe.max_running == 1 and len(probe.runs) == 8


def test_dynamic_and_sequence_batchers_go_through_the_same_gate(tmp_path: Path, probe: Probe) -> None:
    probe.sleep_s = 0.02
    dyn = _config("dyn", SHARED).replace("max_batch_size: 0", "max_batch_size: 4") + "dynamic_batching { }"
    seq = _config("seq", SHARED) + """
        sequence_batching { max_sequence_idle_microseconds: 5000000 }
    """
    repo = _repo(tmp_path, {"dyn": dyn, "seq": seq, "plain": _config("plain", SHARED)})
    with InferenceEngine(repo, rate_limit="execution_count") as engine:
        futs = [engine.submit("dyn", {"INPUT0": np.ones((1, 1), np.float32)}) for _ in range(4)]
        futs += [engine.submit("seq", {"INPUT0": np.ones(1, np.float32)}, sequence_id=7, sequence_start=i == 0,
                               sequence_end=i == 3) for i in range(4)]
        futs += _flood(engine, [("plain", 4)])
        for f in futs:
            f.result(timeout=30)
        assert engine.rate_limiter.in_use() == {}
    assert probe.max_running == 1
    assert _overlaps(probe.runs) == []


# ---- warmup goes through the limiter (core sends its WARM_UP payload through the rate limiter) -------------
WARMUP = """
    model_warmup [ { name: "zeros" batch_size: 1 count: 2
                     inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 1 ] zero_data: true } } } ]
"""


def _wait_for(cond: Any, what: str) -> None:
    deadline = time.monotonic() + 20
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


@pytest.mark.parametrize("mode", ["execution_count", "off"])
def test_warmup_waits_for_the_resource_a_serving_model_holds(tmp_path: Path, probe: Probe, mode: str) -> None:
    """While "serving" executes holding R (count 1), loading "warm" cannot run its warmup; with the limiter
    off (the control) the warmup runs beside it."""
    repo = _repo(tmp_path, {"serving": _config("serving", SHARED), "warm": _config("warm", SHARED) + WARMUP})
    probe.sleep_s = 0.001
    probe.blocked["serving"] = threading.Event()
    with InferenceEngine(repo, rate_limit=mode, model_control_mode="explicit", startup_models=["serving"]) as engine:
        held = _flood(engine, [("serving", 1)])
        _wait_for(lambda: probe.running == 1, "serving never started")
        loader = threading.Thread(target=engine.load_model, args=("warm",))
        loader.start()
        if mode == "off":
            loader.join(30)
            assert engine.is_model_ready("warm")
            assert probe.max_running == 2  # the warmup ran while serving was executing
            probe.blocked["serving"].set()
            held[0].result(timeout=30)
            return
        _wait_for(lambda: engine.rate_limiter.waiting() == ["warm"], "warmup never queued for the resource")
        assert not engine.is_model_ready("warm")
        assert [m for m, _, _ in probe.runs] == []  # nothing finished; the warmup has not started
        probe.blocked["serving"].set()
        held[0].result(timeout=30)
        loader.join(30)
        assert engine.is_model_ready("warm")
        assert engine.rate_limiter.in_use() == {}
        # the warmup's executions count for the limiter (as core's do) but not in statistics
        assert engine.model_statistics("warm")["model_stats"][0]["execution_count"] == 0
    assert probe.max_running == 1
    assert probe.order() == ["serving", "warm", "warm"]
    assert _overlaps(probe.runs) == []


def test_requests_wait_while_another_model_warms_up_holding_the_resource(tmp_path: Path, probe: Probe) -> None:
    repo = _repo(tmp_path, {"serving": _config("serving", SHARED), "warm": _config("warm", SHARED) + WARMUP})
    probe.sleep_s = 0.001
    probe.blocked["warm"] = threading.Event()
    with InferenceEngine(repo, rate_limit="execution_count", model_control_mode="explicit",
                         startup_models=["serving"]) as engine:
        loader = threading.Thread(target=engine.load_model, args=("warm",))
        loader.start()
        _wait_for(lambda: probe.running == 1, "warmup never started")
        fut = _flood(engine, [("serving", 1)])[0]
        _wait_for(lambda: engine.rate_limiter.waiting() == ["serving"], "the request never queued for the resource")
        assert not fut.done() and probe.running == 1
        probe.blocked["warm"].set()
        np.testing.assert_array_equal(fut.result(timeout=30).as_numpy("OUTPUT0"), np.array([0.0], np.float32))
        loader.join(30)
        assert engine.is_model_ready("warm")
    assert probe.max_running == 1
    assert probe.order()[0] == "warm" and sorted(probe.order()) == ["serving", "warm", "warm"]
    assert _overlaps(probe.runs) == []


# ---- resource accounting (the limiter itself, with real ModelRateLimiter messages) --------------------
def _rl(*resources: tuple[str, int, bool], priority: int = 0) -> mc.ModelRateLimiter:
    msg = mc.ModelRateLimiter(priority=priority)
    for name, count, is_global in resources:
        r = msg.resources.add(name=name, count=count)
        setattr(r, "global", is_global)
    return msg


def test_counts_default_to_the_largest_ask_per_device_and_global() -> None:
    """Triton's rate_limiter.md example: A [R1:4 R2:4], B [R2:5 R3:10 R4:5], C [R1:1 R3:7 R4:2]."""
    rl = RateLimiter("execution_count")
    rl.register("m1", [("A", 0, _rl(("R1", 4, False), ("R2", 4, False)))])
    rl.register("m2", [("B", 0, _rl(("R2", 5, False), ("R3", 10, False), ("R4", 5, False)))])
    c = rl.register("m3", [("C", 0, _rl(("R1", 1, False), ("R3", 7, False), ("R4", 2, False)))])
    assert rl.resources() == {"0": {"R1": 4, "R2": 5, "R3": 10, "R4": 5}}
    rl.unregister(c)
    assert rl.resources() == {"0": {"R1": 4, "R2": 5, "R3": 10, "R4": 5}}


def test_explicit_counts_per_device_and_global_as_in_triton_docs() -> None:
    """--rate-limit-resource=R1:10 R2:5:0 R2:8:1 R3:2 on two devices, R3 global in one model."""
    rl = RateLimiter("execution_count", ["R1:10", "R2:5:0", "R2:8:1", ("R3", 2)])
    rl.register("m", [("g0", 0, _rl(("R1", 1, False), ("R2", 1, False))), ("g1", 1, _rl(("R1", 1, False), ("R2", 1, False)))])
    rl.register("n", [("x", 0, _rl(("R3", 1, True)))])
    assert rl.resources() == {"GLOBAL": {"R3": 2}, "0": {"R1": 10, "R2": 5}, "1": {"R1": 10, "R2": 8}}


def test_per_device_resources_are_separate_and_global_ones_shared() -> None:
    rl = RateLimiter("execution_count")
    d0, d1 = rl.register("dev", [("d0", 0, _rl(("R", 1, False))), ("d1", 1, _rl(("R", 1, False)))])
    g0, g1 = rl.register("glob", [("g0", 0, _rl(("G", 1, True))), ("g1", 1, _rl(("G", 1, True)))])
    d0.acquire()
    d1.acquire()  # another device's copy of R: no wait
    assert rl.in_use() == {"0": {"R": 1}, "1": {"R": 1}}
    g0.acquire()
    got = threading.Event()
    t = threading.Thread(target=lambda: (g1.acquire(), got.set()))
    t.start()
    assert not got.wait(0.2)  # the one global G is taken
    assert rl.waiting() == ["glob"]
    g0.release()
    assert got.wait(10)
    t.join()
    assert rl.in_use() == {"GLOBAL": {"G": 1}, "0": {"R": 1}, "1": {"R": 1}}
    for g in (d0, d1, g1):
        g.release()
    assert rl.in_use() == {}


def test_repeated_explicit_resource_keeps_the_smaller_count() -> None:
    rl = RateLimiter("execution_count", ["R:4", "R:2"])
    with pytest.raises(InvalidArgumentError) as err:
        rl.register("m", [("i", 0, _rl(("R", 3, False)))])
    assert err.value.message == ("rate limiter of model 'm': Resource count for \"R\" is limited to 2 which will prevent "
                                 "scheduling of one or more model instances, the minimum required count is 3")


# ---- bad input -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, message", [
    ("R1", "--rate-limit-resource option format is '<resource_name>:<count>:<device>' or '<resource_name>:<count>'. Got R1"),
    ("a:1:2:3", "--rate-limit-resource option format is '<resource_name>:<count>:<device>' or '<resource_name>:<count>'. Got a:1:2:3"),
    ("R:x", "rate limiter resource 'R': count and device must be integers, got ['x']"),
    ("R:-1", "rate limiter resource 'R': count must be >= 0, got -1"),
    ("R:1:-3", "rate limiter resource 'R': device must be >= 0, got -3"),
])
def test_bad_resource_specs(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        parse_resource(spec)
    assert err.value.message == message


def test_bad_mode_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        InferenceEngine(tmp_path, rate_limit="sometimes")
    assert err.value.message == "invalid argument for --rate-limit: 'sometimes' (expected one of ['off', 'execution_count'])"


def test_too_few_resources_fail_that_model_only(tmp_path: Path, probe: Probe) -> None:
    repo = _repo(tmp_path, {"big": _config("big", '{ name: "R" count: 4 }'), "ok": _config("ok", '{ name: "S" count: 1 }'),
                            "unlisted": _config("unlisted", '{ name: "T" count: 1 }')})
    with InferenceEngine(repo, rate_limit="execution_count", rate_limit_resources=["R:1", "S:1"]) as engine:
        index = {m["name"]: m for m in engine.repository_index()}
        assert index["big"]["state"] == "UNAVAILABLE"
        assert index["big"]["reason"] == (
            "rate limiter of model 'big': Resource count for \"R\" is limited to 1 which will prevent scheduling of "
            "one or more model instances, the minimum required count is 4")
        # Triton: once counts are given explicitly, a resource not listed has none
        assert index["unlisted"]["reason"] == (
            "rate limiter of model 'unlisted': Resource count for \"T\" is limited to 0 which will prevent scheduling of "
            "one or more model instances, the minimum required count is 1")
        assert index["ok"]["state"] == "READY"
        out = engine.infer("ok", {"INPUT0": np.array([3.0], np.float32)})
        np.testing.assert_array_equal(out.as_numpy("OUTPUT0"), np.array([3.0], np.float32))
        assert engine.rate_limiter.resources() == {"0": {"S": 1}}


def test_global_and_device_resource_of_one_name_is_a_load_error(tmp_path: Path, probe: Probe) -> None:
    repo = _repo(tmp_path, {"dev": _config("dev", '{ name: "R" count: 1 }'),
                            "glob": _config("glob", '{ name: "R" count: 1 global: true }')})
    with InferenceEngine(repo, rate_limit="execution_count", model_control_mode="explicit", startup_models=["dev"]) as engine:
        with pytest.raises(InvalidArgumentError) as err:
            engine.load_model("glob")
        assert err.value.message == (
            "load failed for model 'glob': version 1 is at UNAVAILABLE state: rate limiter of model 'glob': "
            "Resource \"R\" is present as both global and device-specific resource in the model configuration.;\n")
        assert engine.rate_limiter.resources() == {"0": {"R": 1}}
        engine.infer("dev", {"INPUT0": np.ones(1, np.float32)})


# ---- servers -----------------------------------------------------------------------------------------------
def test_http_server_with_tritonclient_keeps_models_exclusive(tmp_path: Path, probe: Probe) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    from tritonlite.http import HttpServer

    probe.sleep_s = 0.01
    repo = _repo(tmp_path, {"a": _config("a", SHARED), "b": _config("b", SHARED, priority=3)})
    with InferenceEngine(repo, rate_limit="execution_count") as engine, HttpServer(engine, "127.0.0.1", 0) as server:
        client = httpclient.InferenceServerClient(f"127.0.0.1:{server.port}", concurrency=8)
        try:
            pending = []
            for i in range(16):
                inp = httpclient.InferInput("INPUT0", [1], "FP32")
                inp.set_data_from_numpy(np.array([float(i)], np.float32))
                pending.append(client.async_infer("a" if i % 2 else "b", [inp]))
            values = sorted(float(p.get_result().as_numpy("OUTPUT0")[0]) for p in pending)
        finally:
            client.close()
    assert values == [float(i) for i in range(16)]
    assert len(probe.runs) == 16 and probe.max_running == 1


def test_cli_flags_reach_the_engine_and_bad_counts_stop_the_server(tmp_path: Path) -> None:
    from tritonlite.cli import build_parser

    args = build_parser().parse_args(["serve", "--model-repository", "x", "--rate-limit", "EXECUTION_COUNT",
                                      "--rate-limit-resource", "R:2", "--rate-limit-resource", "G:1:0"])
    assert (args.rate_limit, args.rate_limit_resources) == ("execution_count", ["R:2", "G:1:0"])
    with pytest.raises(SystemExit) as bad:
        build_parser().parse_args(["serve", "--model-repository", "x", "--rate-limit", "sometimes"])
    assert bad.value.code == 1

    write_model(tmp_path, "big", _config("big", '{ name: "R" count: 4 }'), {"1/model.py": TIMED_PY})
    proc = subprocess.run(
        [sys.executable, "-m", "tritonlite", "serve", "--model-repository", str(tmp_path), "--rate-limit", "execution_count",
         "--rate-limit-resource", "R:1", "--allow-http", "false", "--allow-grpc", "false", "--allow-metrics", "false"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    # the log line quotes the message (its inner quotes escaped)
    assert "failed to load 'big' version 1: rate limiter of model 'big': Resource count for " in proc.stderr
    assert ("R" + '\\"' + " is limited to 1 which will prevent scheduling of one or more model instances, the minimum "
            "required count is 4") in proc.stderr
    assert proc.stderr.rstrip().endswith("error: creating server: Internal - failed to load all models")
