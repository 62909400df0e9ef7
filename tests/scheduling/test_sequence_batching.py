"""The sequence batcher end to end: real model.py and ONNX models, both strategies, controls, implicit state.

Assertions are on counts, orders, slot indices and state values, never on wall-clock thresholds;
where something must happen "later" (idle reaping, backlog timeout) a bounded loop waits for it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tritonlite import InferenceEngine, InvalidArgumentError

from model_repos import write_model

# A probe/accumulator: OUTPUT = state + INPUT on READY requests; SEEN is a JSON report of what the
# model saw (control tensors, its position in the batch, padding, the execution number).
PROBE_PY = """
import json
import numpy as np
import triton_python_backend_utils as pb_utils


def _plain(a):
    return [v.decode() if isinstance(v, bytes) else v.item() for v in a.reshape(-1)]


class TritonPythonModel:
    def initialize(self, args):
        self.batching = json.loads(args["model_config"])["max_batch_size"] > 0
        self.executions = 0

    def execute(self, requests):
        self.executions += 1
        ready = []
        for r in requests:
            t = pb_utils.get_input_tensor_by_name(r, "READY")
            ready.append(True if t is None else bool(t.as_numpy().reshape(-1)[0]))
        corrids = [r.correlation_id() for r, ok in zip(requests, ready) if ok]
        responses = []
        for index, (r, ok) in enumerate(zip(requests, ready)):
            x = pb_utils.get_input_tensor_by_name(r, "INPUT").as_numpy()
            state = pb_utils.get_input_tensor_by_name(r, "STATE_IN")
            total = (state.as_numpy() if state is not None else np.zeros_like(x)) + (x if ok else 0)
            seen = {
                "controls": {t.name(): [t.as_numpy().dtype.str, list(t.as_numpy().shape), _plain(t.as_numpy())]
                             for t in r.inputs() if t.name() not in ("INPUT", "STATE_IN")},
                "corrid": r.correlation_id(), "flags": r.flags(), "index": index, "batch": len(requests),
                "padding": ready.count(False), "execution": self.executions,
                "duplicates": len(corrids) - len(set(corrids)),
                "outputs": r.requested_output_names(),
            }
            shape = (1, 1) if self.batching else (1,)
            text = np.array([json.dumps(seen).encode()], dtype=object).reshape(shape)
            out = [pb_utils.Tensor("OUTPUT", total.astype(np.int32)), pb_utils.Tensor("SEEN", text)]
            if state is not None:
                out.append(pb_utils.Tensor("STATE_OUT", total.astype(np.int32)))
            responses.append(pb_utils.InferenceResponse(out))
        return responses
"""

CONTROLS = """
    control_input [
      { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },
      { name: "END" control [ { kind: CONTROL_SEQUENCE_END fp32_false_true: [ 0, 1 ] } ] },
      { name: "READY" control [ { kind: CONTROL_SEQUENCE_READY bool_false_true: [ false, true ] } ] },
      { name: "CORRID" control [ { kind: CONTROL_SEQUENCE_CORRID data_type: %s } ] }
    ]
"""

STATE = """
    state [ { input_name: "STATE_IN" output_name: "STATE_OUT" data_type: TYPE_INT32 dims: [ 1 ]
              %s } ]
"""


def probe_config(name: str, max_batch: int = 2, strategy: str = "direct { }", corrid: str = "TYPE_UINT64",
                 idle_us: int = 60_000_000, state: str | None = "", instances: int = 1) -> str:
    state_block = STATE % state if state is not None else ""
    return f"""
        name: "{name}"
        backend: "python"
        max_batch_size: {max_batch}
        input [ {{ name: "INPUT" data_type: TYPE_INT32 dims: [ 1 ] }} ]
        output [ {{ name: "OUTPUT" data_type: TYPE_INT32 dims: [ 1 ] }}, {{ name: "SEEN" data_type: TYPE_STRING dims: [ 1 ] }} ]
        instance_group [ {{ kind: KIND_CPU count: {instances} }} ]
        sequence_batching {{
          max_sequence_idle_microseconds: {idle_us}
          {strategy}
          {CONTROLS % corrid}
          {state_block}
        }}
    """


def add_probe(root: Path, name: str, files: dict[str, str | bytes] | None = None, **kw: Any) -> None:
    write_model(root, name, probe_config(name, **kw), {"1/model.py": PROBE_PY, **(files or {})})


def x(value: int, batching: bool = True) -> np.ndarray:
    return np.array([[value]] if batching else [value], dtype=np.int32)


def seen(result: Any) -> dict[str, Any]:
    return json.loads(result.as_numpy("SEEN").reshape(-1)[0])


def total(result: Any) -> int:
    return int(result.as_numpy("OUTPUT").reshape(-1)[0])


def run_interleaved(engine: InferenceEngine, model: str, sequences: dict[Any, list[int]], batching: bool = True,
                    dtype: Any = np.int32) -> dict[Any, list[Any]]:
    """Submit every sequence's requests round-robin from one thread (so each sequence stays in order)."""
    futures: dict[Any, list[Any]] = {cid: [] for cid in sequences}
    longest = max(len(v) for v in sequences.values())
    for step in range(longest):
        for cid, values in sequences.items():
            if step < len(values):
                data = np.array([[values[step]]] if batching else [values[step]], dtype=dtype)
                futures[cid].append(engine.submit(model, {"INPUT": data}, sequence_id=cid, sequence_start=step == 0,
                                                  sequence_end=step == len(values) - 1))
    return {cid: [f.result(timeout=30) for f in fs] for cid, fs in futures.items()}


SEQUENCES = {101: [1, 2, 3], 102: [10, 20, 30, 40, 50], 103: [100, 200], 104: [1000, 2000, 3000, 4000]}


# ------------------------------------------------------------------------------------------ direct
def test_direct_backlog_interleaved_more_sequences_than_slots(tmp_path: Path, no_thread_leak: Any) -> None:
    add_probe(tmp_path, "acc")
    with InferenceEngine(tmp_path) as engine:
        results = run_interleaved(engine, "acc", SEQUENCES)
        stats = engine.model_statistics("acc")["model_stats"][0]
    for cid, values in SEQUENCES.items():
        reports = [seen(r) for r in results[cid]]
        assert [total(r) for r in results[cid]] == list(np.cumsum(values))  # state carried, reset per sequence
        assert {s["index"] for s in reports} <= {0, 1} and len({s["index"] for s in reports}) == 1  # one slot
        assert all(s["corrid"] == cid and s["controls"]["CORRID"][2] == [cid] for s in reports)
        assert [s["controls"]["START"][2] for s in reports] == [[1]] + [[0]] * (len(values) - 1)
        assert [s["controls"]["END"][2] for s in reports] == [[0.0]] * (len(values) - 1) + [[1.0]]
        assert all(s["controls"]["READY"][2] == [True] and s["duplicates"] == 0 for s in reports)
        assert [s["execution"] for s in reports] == sorted(s["execution"] for s in reports)
        assert "STATE_OUT" not in results[cid][0].outputs  # state stays inside the engine
    # 101 and 102 took the two slots; 103 and 104 waited in the backlog for a slot to be freed by an END
    first = {cid: seen(results[cid][0]) for cid in SEQUENCES}
    last = {cid: seen(results[cid][-1]) for cid in SEQUENCES}
    assert {first[101]["index"], first[102]["index"]} == {0, 1}
    for late in (103, 104):
        before = [c for c in (101, 102, 103) if c != late and last[c]["index"] == first[late]["index"]
                  and last[c]["execution"] < first[late]["execution"]]
        assert before, f"sequence {late} ran before its slot was freed"
    assert first[103]["execution"] > min(last[101]["execution"], last[102]["execution"])
    n = sum(len(v) for v in SEQUENCES.values())
    assert stats["inference_count"] == n and stats["inference_stats"]["success"]["count"] == n
    assert sum(b["batch_size"] * b["compute_infer"]["count"] for b in stats["batch_stats"]) >= n
    assert sum(b["compute_infer"]["count"] for b in stats["batch_stats"]) == stats["execution_count"]
    assert no_thread_leak() == []


def test_direct_padding_is_not_ready_and_keeps_slot_positions(tmp_path: Path) -> None:
    add_probe(tmp_path, "acc")
    with InferenceEngine(tmp_path) as engine:
        a = engine.infer("acc", {"INPUT": x(5)}, sequence_id=1, sequence_start=True)  # slot 0, alone
        b = engine.infer("acc", {"INPUT": x(7)}, sequence_id=2, sequence_start=True)  # slot 1, slot 0 padded
        stats = engine.model_statistics("acc")["model_stats"][0]
    assert (seen(a)["index"], seen(a)["batch"], seen(a)["padding"]) == (0, 1, 0)
    assert (seen(b)["index"], seen(b)["batch"], seen(b)["padding"]) == (1, 2, 1)
    assert total(b) == 7
    # Triton: batch_stats keep the padded size, inference_count and success count only real requests
    assert {s["batch_size"]: s["compute_infer"]["count"] for s in stats["batch_stats"]} == {1: 1, 2: 1}
    assert stats["inference_count"] == 2 and stats["execution_count"] == 2
    assert stats["inference_stats"]["success"]["count"] == 2


def test_direct_minimum_slot_utilization_waits_for_a_full_batch(tmp_path: Path) -> None:
    strategy = "direct { max_queue_delay_microseconds: 20000000 minimum_slot_utilization: 1.0 }"
    add_probe(tmp_path, "acc", strategy=strategy)
    with InferenceEngine(tmp_path) as engine:
        results = run_interleaved(engine, "acc", {1: [1, 2], 2: [3, 4]})
    assert all(seen(r)["batch"] == 2 and seen(r)["padding"] == 0 for rs in results.values() for r in rs)
    assert [total(r) for r in results[2]] == [3, 7]


def test_direct_multiple_instances_spread_sequences(tmp_path: Path) -> None:
    add_probe(tmp_path, "acc", max_batch=0, instances=2)
    with InferenceEngine(tmp_path) as engine:
        results = run_interleaved(engine, "acc", SEQUENCES, batching=False)
    for cid, values in SEQUENCES.items():
        assert [total(r) for r in results[cid]] == list(np.cumsum(values))
        reports = [seen(r) for r in results[cid]]
        assert all(s["batch"] == 1 and s["controls"]["READY"][1] == [1] for s in reports)  # shape [1] unbatched


# ------------------------------------------------------------------------------------------ oldest
def test_oldest_backlog_interleaved_more_sequences_than_candidates(tmp_path: Path, no_thread_leak: Any) -> None:
    add_probe(tmp_path, "acc", strategy="oldest { max_candidate_sequences: 2 }")
    with InferenceEngine(tmp_path) as engine:
        results = run_interleaved(engine, "acc", SEQUENCES)
        stats = engine.model_statistics("acc")["model_stats"][0]
    for cid, values in SEQUENCES.items():
        reports = [seen(r) for r in results[cid]]
        assert [total(r) for r in results[cid]] == list(np.cumsum(values))
        assert all(s["duplicates"] == 0 and s["padding"] == 0 for s in reports)
        assert all(s["controls"]["CORRID"][2] == [cid] and s["controls"]["READY"][2] == [True] for s in reports)
        assert [s["execution"] for s in reports] == sorted(s["execution"] for s in reports)
    last = {cid: seen(results[cid][-1])["execution"] for cid in SEQUENCES}
    first = {cid: seen(results[cid][0])["execution"] for cid in SEQUENCES}
    # only two candidates: a backlogged sequence starts after one of the first two ended
    assert min(first[103], first[104]) > min(last[101], last[102])
    n = sum(len(v) for v in SEQUENCES.values())
    assert stats["inference_count"] == n
    assert sum(b["batch_size"] * b["compute_infer"]["count"] for b in stats["batch_stats"]) == n  # no padding
    assert no_thread_leak() == []


def test_oldest_preferred_batch_size_and_delay(tmp_path: Path) -> None:
    strategy = "oldest { max_candidate_sequences: 4 preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 20000000 }"
    add_probe(tmp_path, "acc", max_batch=4, strategy=strategy)
    with InferenceEngine(tmp_path) as engine:
        results = run_interleaved(engine, "acc", {1: [1, 2], 2: [3, 4], 3: [5, 6], 4: [7, 8]})
        stats = engine.model_statistics("acc")["model_stats"][0]
    assert all(seen(r)["batch"] == 4 for rs in results.values() for r in rs)
    assert {s["batch_size"]: s["compute_infer"]["count"] for s in stats["batch_stats"]} == {4: 2}
    assert [total(r) for r in results[4]] == [7, 15]


def test_oldest_candidates_can_exceed_max_batch_size(tmp_path: Path) -> None:
    add_probe(tmp_path, "acc", max_batch=1, strategy="oldest { max_candidate_sequences: 3 }")
    with InferenceEngine(tmp_path) as engine:
        results = run_interleaved(engine, "acc", {1: [1, 1, 1], 2: [2, 2], 3: [3, 3, 3, 3]})
    assert [total(r) for r in results[3]] == [3, 6, 9, 12]
    assert all(seen(r)["batch"] == 1 for rs in results.values() for r in rs)


# ---------------------------------------------------------------------------------- controls, ids
def test_control_dtypes_and_string_correlation_id(tmp_path: Path) -> None:
    add_probe(tmp_path, "strid", max_batch=0, corrid="TYPE_STRING")
    add_probe(tmp_path, "id32", max_batch=0, corrid="TYPE_INT32")
    add_probe(tmp_path, "idi64", max_batch=0, corrid="TYPE_INT64")
    with InferenceEngine(tmp_path) as engine:
        r = engine.infer("strid", {"INPUT": x(1, False)}, sequence_id="seq-a", sequence_start=True)
        s = seen(r)
        assert s["corrid"] == "seq-a" and s["controls"]["CORRID"] == ["|O", [1], ["seq-a"]]
        assert s["controls"]["START"] == ["<i4", [1], [1]] and s["controls"]["END"] == ["<f4", [1], [0.0]]
        assert s["controls"]["READY"] == ["|b1", [1], [True]] and s["flags"] == 1
        r = engine.infer("strid", {"INPUT": x(2, False)}, sequence_id="seq-a", sequence_end=True)
        assert total(r) == 3 and seen(r)["flags"] == 2 and seen(r)["controls"]["END"][2] == [1.0]
        r = engine.infer("id32", {"INPUT": x(1, False)}, sequence_id=(1 << 32) + 5, sequence_start=True, sequence_end=True)
        assert seen(r)["controls"]["CORRID"] == ["<i4", [1], [5]]  # 32-bit controls keep the low bits
        r = engine.infer("idi64", {"INPUT": x(1, False)}, sequence_id=(1 << 63) + 1, sequence_start=True, sequence_end=True)
        assert seen(r)["controls"]["CORRID"] == ["<i8", [1], [-(1 << 63) + 1]]  # uint64 reinterpreted


def test_sequence_request_errors(tmp_path: Path) -> None:
    add_probe(tmp_path, "acc")
    add_probe(tmp_path, "strid", corrid="TYPE_STRING")
    with InferenceEngine(tmp_path) as engine:
        with pytest.raises(InvalidArgumentError, match="inference request to model 'acc' must specify a non-zero or non-empty correlation ID"):
            engine.infer("acc", {"INPUT": x(1)})
        with pytest.raises(InvalidArgumentError, match="must specify the START flag") as err:
            engine.infer("acc", {"INPUT": x(1)}, sequence_id=42)
        assert str(err.value) == ("inference request for sequence 42 to model 'acc' must specify the START flag on the "
                                  "first request of the sequence")
        with pytest.raises(InvalidArgumentError, match="inference request for sequence abc to model 'strid' must specify the START"):
            engine.infer("strid", {"INPUT": x(1)}, sequence_id="abc")
        with pytest.raises(InvalidArgumentError, match="sequence batching control 'CORRID' data-type is 'BYTES', but model 'acc' expects 'UINT64'"):
            engine.infer("acc", {"INPUT": x(1)}, sequence_id="abc", sequence_start=True)
        with pytest.raises(InvalidArgumentError, match="sequence batching control 'CORRID' data-type is 'UINT64', but model 'strid' expects 'BYTES'"):
            engine.infer("strid", {"INPUT": x(1)}, sequence_id=7, sequence_start=True)
        with pytest.raises(InvalidArgumentError, match="must specify batch-size 1 due to requirements of sequence batcher"):
            engine.infer("acc", {"INPUT": np.ones((2, 1), np.int32)}, sequence_id=9, sequence_start=True)
        # an ended sequence is forgotten: continuing it needs a new START
        engine.infer("acc", {"INPUT": x(1)}, sequence_id=5, sequence_start=True, sequence_end=True)
        with pytest.raises(InvalidArgumentError, match="sequence 5 to model 'acc' must specify the START flag"):
            engine.infer("acc", {"INPUT": x(1)}, sequence_id=5)
        assert engine.model_statistics("acc")["model_stats"][0]["inference_stats"]["fail"]["count"] == 5


def test_restart_with_same_id_resets_state(tmp_path: Path) -> None:
    add_probe(tmp_path, "acc")
    with InferenceEngine(tmp_path) as engine:
        engine.infer("acc", {"INPUT": x(5)}, sequence_id=3, sequence_start=True)
        assert total(engine.infer("acc", {"INPUT": x(5)}, sequence_id=3)) == 10
        assert total(engine.infer("acc", {"INPUT": x(1)}, sequence_id=3, sequence_start=True)) == 1  # early restart
        assert total(engine.infer("acc", {"INPUT": x(1)}, sequence_id=3, sequence_end=True)) == 2


# ------------------------------------------------------------------------------- idle and timeouts
def _wait_for_error(engine: InferenceEngine, model: str, cid: int, data: np.ndarray) -> str:
    for attempt in range(50):
        time.sleep(0.05 * (attempt + 1))
        try:
            engine.infer(model, {"INPUT": data}, sequence_id=cid)
        except InvalidArgumentError as exc:
            return str(exc)
    raise AssertionError("the idle sequence was never released")


def test_idle_sequence_releases_its_slot_to_the_backlog(tmp_path: Path) -> None:
    add_probe(tmp_path, "acc", max_batch=0, idle_us=50_000)
    with InferenceEngine(tmp_path) as engine:
        engine.infer("acc", {"INPUT": x(1, False)}, sequence_id=1, sequence_start=True)  # the only slot
        waiting = engine.submit("acc", {"INPUT": x(9, False)}, sequence_id=2, sequence_start=True, sequence_end=True)
        assert total(waiting.result(timeout=30)) == 9  # got the slot once sequence 1 went idle
        message = _wait_for_error(engine, "acc", 1, x(1, False))
        assert message == ("inference request for sequence 1 to model 'acc' must specify the START flag on the first "
                           "request of the sequence")


def test_backlog_timeout_rejects_the_waiting_sequence(tmp_path: Path) -> None:
    add_probe(tmp_path, "acc", max_batch=0)
    with InferenceEngine(tmp_path) as engine:
        engine.infer("acc", {"INPUT": x(1, False)}, sequence_id=1, sequence_start=True)
        waiting = engine.submit("acc", {"INPUT": x(2, False)}, sequence_id=2, sequence_start=True, timeout_us=50_000)
        with pytest.raises(Exception, match="timeout of the corresponding sequence has been expired"):
            waiting.result(timeout=30)
        assert total(engine.infer("acc", {"INPUT": x(1, False)}, sequence_id=1, sequence_end=True)) == 2


def test_unload_fails_backlogged_sequences_and_joins_threads(tmp_path: Path, no_thread_leak: Any) -> None:
    add_probe(tmp_path, "acc", max_batch=0)
    engine = InferenceEngine(tmp_path)
    engine.infer("acc", {"INPUT": x(1, False)}, sequence_id=1, sequence_start=True)
    waiting = engine.submit("acc", {"INPUT": x(2, False)}, sequence_id=2, sequence_start=True)
    engine.close()
    with pytest.raises(Exception, match="unloading"):
        waiting.result(timeout=30)
    assert no_thread_leak() == []


# ----------------------------------------------------------------------------------- implicit state
def test_initial_state_from_data_file(tmp_path: Path) -> None:
    init = 'initial_state: [ { data_type: TYPE_INT32 dims: [ 1 ] data_file: "init.bin" name: "start_at_100" } ]'
    add_probe(tmp_path, "acc", state=init, files={"initial_state/init.bin": np.array([100], np.int32).tobytes()})
    with InferenceEngine(tmp_path) as engine:
        results = run_interleaved(engine, "acc", {1: [1, 2], 2: [5]})
    assert [total(r) for r in results[1]] == [101, 103] and total(results[2][0]) == 105


@pytest.mark.parametrize("init, reason", [
    ('initial_state: [ { data_type: TYPE_FP32 dims: [ 1 ] zero_data: true name: "z" } ]', "does not match the state data type"),
    ('initial_state: [ { data_type: TYPE_INT32 dims: [ 1 ] zero_data: true } ]', "Field 'name' must be set"),
    ('initial_state: [ { data_type: TYPE_INT32 dims: [ 2 ] zero_data: true name: "z" } ]', "doesn't match 'state' dim description"),
    ('initial_state: [ { data_type: TYPE_INT32 dims: [ 1 ] data_file: "missing.bin" name: "z" } ]', "missing.bin"),
])
def test_bad_initial_state_fails_the_load(tmp_path: Path, init: str, reason: str) -> None:
    add_probe(tmp_path, "acc", state=init)
    with InferenceEngine(tmp_path) as engine:
        entry = next(e for e in engine.repository_index() if e["name"] == "acc")
        assert entry.get("state") == "UNAVAILABLE" and reason in entry.get("reason", "")


def test_requested_output_subset_still_carries_state(tmp_path: Path) -> None:
    add_probe(tmp_path, "acc")
    with InferenceEngine(tmp_path) as engine:
        first = engine.infer("acc", {"INPUT": x(4)}, sequence_id=8, sequence_start=True, outputs=["SEEN"])
        assert set(first.outputs) == {"SEEN"} and seen(first)["outputs"] == ["SEEN", "STATE_OUT"]
        assert total(engine.infer("acc", {"INPUT": x(4)}, sequence_id=8, sequence_end=True)) == 8


def _accumulator_onnx(path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        [helper.make_node("Add", ["INPUT", "STATE_IN"], ["OUTPUT"]),
         helper.make_node("Identity", ["OUTPUT"], ["STATE_OUT"]),
         helper.make_node("Identity", ["START"], ["START_SEEN"]),
         helper.make_node("Identity", ["READY"], ["READY_SEEN"])],
        "accumulator",
        [helper.make_tensor_value_info(n, f32, ["batch", 1]) for n in ("INPUT", "STATE_IN", "START", "READY")],
        [helper.make_tensor_value_info(n, f32, ["batch", 1]) for n in ("OUTPUT", "STATE_OUT", "START_SEEN", "READY_SEEN")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


ONNX_CONFIG = """
    name: "acc_onnx"
    platform: "onnxruntime_onnx"
    max_batch_size: 2
    input [ { name: "INPUT" data_type: TYPE_FP32 dims: [ 1 ] } ]
    output [ { name: "OUTPUT" data_type: TYPE_FP32 dims: [ 1 ] }, { name: "START_SEEN" data_type: TYPE_FP32 dims: [ 1 ] },
             { name: "READY_SEEN" data_type: TYPE_FP32 dims: [ 1 ] } ]
    instance_group [ { kind: KIND_CPU count: 1 } ]
    sequence_batching {
      %s
      control_input [
        { name: "START" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ] },
        { name: "READY" control [ { kind: CONTROL_SEQUENCE_READY fp32_false_true: [ 0, 1 ] } ] }
      ]
      state [ { input_name: "STATE_IN" output_name: "STATE_OUT" data_type: TYPE_FP32 dims: [ 1 ]
                initial_state: [ { data_type: TYPE_FP32 dims: [ 1 ] zero_data: true name: "zeros" } ] } ]
    }
"""


@pytest.mark.parametrize("strategy", ["direct { }", "oldest { max_candidate_sequences: 2 }"])
def test_onnx_implicit_state_both_strategies(tmp_path: Path, strategy: str) -> None:
    root = tmp_path / "models"
    write_model(root, "acc_onnx", ONNX_CONFIG % strategy)
    _accumulator_onnx(root / "acc_onnx" / "1" / "model.onnx")
    with InferenceEngine(root) as engine:  # auto-complete must leave control and state tensors out of the config
        assert [i["name"] for i in engine.model_config("acc_onnx")["input"]] == ["INPUT"]
        results = run_interleaved(engine, "acc_onnx", SEQUENCES, dtype=np.float32)
        single = engine.infer("acc_onnx", {"INPUT": np.array([[2.5]], np.float32)}, sequence_id=77, sequence_start=True)
        stats = engine.model_statistics("acc_onnx")["model_stats"][0]
    for cid, values in SEQUENCES.items():
        got = [float(r.as_numpy("OUTPUT")[0, 0]) for r in results[cid]]
        assert got == [float(v) for v in np.cumsum(values)]
        assert [float(r.as_numpy("START_SEEN")[0, 0]) for r in results[cid]] == [1.0] + [0.0] * (len(values) - 1)
        assert all(float(r.as_numpy("READY_SEEN")[0, 0]) == 1.0 for r in results[cid])
        assert all(r.as_numpy("OUTPUT").shape == (1, 1) and "STATE_OUT" not in r.outputs for r in results[cid])
    assert float(single.as_numpy("OUTPUT")[0, 0]) == 2.5  # zero_data initial state
    assert stats["inference_count"] == sum(len(v) for v in SEQUENCES.values()) + 1


def test_onnx_direct_padding_request_runs_not_ready(tmp_path: Path) -> None:
    root = tmp_path / "models"
    write_model(root, "acc_onnx", ONNX_CONFIG % "direct { }")
    _accumulator_onnx(root / "acc_onnx" / "1" / "model.onnx")
    with InferenceEngine(root, strict_model_config=True) as engine:
        one = np.array([[1.5]], np.float32)
        engine.infer("acc_onnx", {"INPUT": one}, sequence_id=1, sequence_start=True)  # slot 0
        b = engine.infer("acc_onnx", {"INPUT": one}, sequence_id=2, sequence_start=True)  # slot 1: batch [null, b]
        a = engine.infer("acc_onnx", {"INPUT": one}, sequence_id=1, sequence_end=True)
        stats = engine.model_statistics("acc_onnx")["model_stats"][0]
    assert float(b.as_numpy("OUTPUT")[0, 0]) == 1.5 and float(b.as_numpy("READY_SEEN")[0, 0]) == 1.0
    assert float(a.as_numpy("OUTPUT")[0, 0]) == 3.0  # the padding did not touch sequence 1's state
    assert {s["batch_size"]: s["compute_infer"]["count"] for s in stats["batch_stats"]} == {1: 2, 2: 1}
    assert stats["inference_count"] == 3
