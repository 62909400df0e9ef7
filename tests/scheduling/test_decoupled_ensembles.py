"""Decoupled composing models inside ensembles (Triton's rules): every response of a decoupled step
flows on to the steps after it, the ensemble itself becomes decoupled and streams; load-time checks
on mixed origins; errors and cancellation mid-stream; a generator feeding a sequence model through
response parameters; gRPC ModelStreamInfer with the real tritonclient."""

from __future__ import annotations

import queue
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tritonlite import InferenceEngine, UnsupportedError
from tritonlite.errors import CancelledError, TritonLiteError

from model_repos import RAISING_PY, identity_py_config, write_model

#: decoupled: for IN = [n, start] sends OUT = start, start-1, ... (n responses), then a lone final flag;
#: with PARAMS it also sets sequence parameters on each response. Stops early when cancelled.
GENERATOR_PY = """
import time
import numpy as np
import triton_python_backend_utils as pb_utils
import {module} as sync

PARAMS = {params}


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            n, start = [int(v) for v in pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()]
            sender = request.get_response_sender()
            for i in range(n):
                if sender.is_cancelled():
                    sync.CANCELLED.set()
                    break
                params = {{"sequence_id": 77, "sequence_start": i == 0, "sequence_end": i == n - 1}} if PARAMS else None
                out = pb_utils.Tensor("OUT", np.array([start - i], np.int32))
                sender.send(pb_utils.InferenceResponse([out], parameters=params))
                if {pause}:
                    time.sleep(0.01)
            sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        return None
"""

GENERATOR_CFG = """
name: "{name}"
backend: "python"
max_batch_size: 0
model_transaction_policy {{ decoupled: true }}
input [ {{ name: "IN" data_type: TYPE_INT32 dims: [ 2 ] }} ]
output [ {{ name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] }} ]
"""

#: non-decoupled: OUTPUT0 = INPUT0 * 10 (+ INPUT1 when mapped)
SCALE_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            y = pb_utils.get_input_tensor_by_name(r, "INPUT1")
            z = x * 10 + (y.as_numpy() if y is not None else 0)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", z.astype(x.dtype))]))
        return out
"""

SCALE_CFG = """
name: "scale_py"
backend: "python"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_INT32 dims: [ 1 ] },
        { name: "INPUT1" data_type: TYPE_INT32 dims: [ 1 ] optional: true } ]
output [ { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 1 ] } ]
"""

#: sequence model: running sum per sequence; outputs [sum, start flag, end flag, correlation id]
ACCUMULATE_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.sums = {}

    def execute(self, requests):
        out = []
        for r in requests:
            x = int(pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()[0])
            start = int(pb_utils.get_input_tensor_by_name(r, "START").as_numpy()[0])
            end = int(pb_utils.get_input_tensor_by_name(r, "END").as_numpy()[0])
            cid = r.correlation_id()
            self.sums[cid] = (0 if start else self.sums.get(cid, 0)) + x
            value = np.array([self.sums[cid], start, end, cid], np.int32)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", value)]))
        return out
"""

ACCUMULATE_CFG = """
name: "accumulate_py"
backend: "python"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_INT32 dims: [ 1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ 4 ] } ]
sequence_batching {
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] },
    { name: "END" control [ { kind: CONTROL_SEQUENCE_END int32_false_true: [ 0, 1 ] } ] }
  ]
}
"""

SYNC_MODULE = """
import threading

CANCELLED = threading.Event()
"""

I2 = "data_type: TYPE_INT32 dims: [ 2 ]"
I1 = "data_type: TYPE_INT32 dims: [ 1 ]"


def _ensemble(root: Path, name: str, inputs: dict[str, str], outputs: dict[str, str], steps: list[str]) -> None:
    ins = ", ".join(f'{{ name: "{n}" {spec} }}' for n, spec in inputs.items())
    outs = ", ".join(f'{{ name: "{n}" {spec} }}' for n, spec in outputs.items())
    body = f'name: "{name}"\nplatform: "ensemble"\nmax_batch_size: 0\ninput [ {ins} ]\noutput [ {outs} ]\n'
    body += f"ensemble_scheduling {{ step [ {', '.join(steps)} ] }}\n"
    write_model(root, name, body, {"1/.keep": ""})


def _step(model: str, inputs: dict[str, str], outputs: dict[str, str]) -> str:
    ins = " ".join(f'input_map {{ key: "{k}" value: "{v}" }}' for k, v in inputs.items())
    outs = " ".join(f'output_map {{ key: "{k}" value: "{v}" }}' for k, v in outputs.items())
    return f'{{ model_name: "{model}" model_version: -1 {ins} {outs} }}'


@pytest.fixture
def sync_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"dens_sync_{uuid.uuid4().hex}"
    folder = tmp_path / "sync"
    folder.mkdir()
    (folder / f"{name}.py").write_text(SYNC_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    yield name
    sys.modules.pop(name, None)


def _repo(root: Path, module: str) -> Path:
    for name, params, pause in (("gen_py", False, False), ("slow_gen_py", False, True), ("seq_gen_py", True, False)):
        write_model(root, name, GENERATOR_CFG.format(name=name),
                    {"1/model.py": GENERATOR_PY.format(module=module, params=params, pause=pause)})
    write_model(root, "scale_py", SCALE_CFG, {"1/model.py": SCALE_PY})
    write_model(root, "accumulate_py", ACCUMULATE_CFG, {"1/model.py": ACCUMULATE_PY})
    write_model(root, "raising_py", identity_py_config("raising_py", dims="[ 1 ]", dtype="TYPE_INT32"),
                {"1/model.py": RAISING_PY})
    gen = _step("gen_py", {"IN": "IN"}, {"OUT": "raw"})
    _ensemble(root, "ens_stream", {"IN": I2}, {"OUT": I1}, [gen, _step("scale_py", {"INPUT0": "raw"}, {"OUTPUT0": "OUT"})])
    # the generator's tensor and a tensor derived from it meet again in one step: same origin, allowed
    _ensemble(root, "ens_diamond", {"IN": I2}, {"OUT": I1, "RAW": I1}, [
        gen,
        _step("scale_py", {"INPUT0": "raw"}, {"OUTPUT0": "tens"}),
        _step("scale_py", {"INPUT0": "tens", "INPUT1": "raw"}, {"OUTPUT0": "OUT"}),
        _step("scale_py", {"INPUT0": "raw"}, {"OUTPUT0": "RAW"}),
    ])
    _ensemble(root, "ens_raise", {"IN": I2}, {"OUT": I1}, [gen, _step("raising_py", {"INPUT0": "raw"}, {"OUTPUT0": "OUT"})])
    _ensemble(root, "ens_slow", {"IN": I2}, {"OUT": I1}, [
        _step("slow_gen_py", {"IN": "IN"}, {"OUT": "raw"}), _step("scale_py", {"INPUT0": "raw"}, {"OUTPUT0": "OUT"}),
    ])
    _ensemble(root, "ens_seq", {"IN": I2}, {"OUT": "data_type: TYPE_INT32 dims: [ 4 ]"}, [
        _step("seq_gen_py", {"IN": "IN"}, {"OUT": "raw"}), _step("accumulate_py", {"INPUT0": "raw"}, {"OUTPUT0": "OUT"}),
    ])
    # a step reading an ensemble input and a generator output: two origins, refused at load
    _ensemble(root, "ens_mixed", {"IN": I2, "BIAS": I1}, {"OUT": I1}, [
        gen, _step("scale_py", {"INPUT0": "raw", "INPUT1": "BIAS"}, {"OUTPUT0": "OUT"}),
    ])
    # two ensemble outputs from two different generators: refused too
    _ensemble(root, "ens_two_origins", {"IN": I2}, {"A": I1, "B": I1}, [
        _step("gen_py", {"IN": "IN"}, {"OUT": "A"}), _step("slow_gen_py", {"IN": "IN"}, {"OUT": "B"}),
    ])
    return root


@pytest.fixture
def engine(tmp_path: Path, sync_module: str) -> Iterator[InferenceEngine]:
    with InferenceEngine(_repo(tmp_path / "models", sync_module)) as eng:
        yield eng


def _values(results: Any, name: str = "OUT") -> list[list[int]]:
    return [r.as_numpy(name).tolist() for r in results]


def _stats(engine: InferenceEngine, name: str) -> dict[str, Any]:
    return engine.model_statistics(name)["model_stats"][0]


def test_every_generator_response_flows_through_the_next_step(engine: InferenceEngine) -> None:
    results = list(engine.stream_infer("ens_stream", {"IN": np.array([3, 1], np.int32)}))
    assert _values(results) == [[10], [0], [-10]]
    assert all(r.model_name == "ens_stream" and r.as_numpy("OUT").dtype == np.int32 for r in results)
    assert engine.model_config("ens_stream")["model_transaction_policy"] == {"decoupled": True}
    assert _stats(engine, "scale_py")["execution_count"] == 3
    ens = _stats(engine, "ens_stream")
    assert ens["inference_stats"]["success"]["count"] == 1 and ens["execution_count"] == 1
    # zero responses from the generator: the stream ends with no response, not an error
    assert list(engine.stream_infer("ens_stream", {"IN": np.array([0, 1], np.int32)})) == []


def test_a_decoupled_ensemble_refuses_unary_infer(engine: InferenceEngine) -> None:
    with pytest.raises(UnsupportedError, match="model 'ens_stream' uses the decoupled transaction policy: use stream_infer"):
        engine.infer("ens_stream", {"IN": np.array([1, 1], np.int32)})


def test_tensors_of_one_origin_meet_again_per_iteration(engine: InferenceEngine) -> None:
    results = list(engine.stream_infer("ens_diamond", {"IN": np.array([3, 1], np.int32)}))
    # raw = 1, 0, -1; OUT = (raw * 10) * 10 + raw, RAW = raw * 10, iteration by iteration
    assert sorted(_values(results)) == [[-101], [0], [101]]
    assert sorted(zip(_values(results), _values(results, "RAW"))) == [([-101], [-10]), ([0], [0]), ([101], [10])]
    only_raw = list(engine.stream_infer("ens_diamond", {"IN": np.array([2, 5], np.int32)}, outputs=["RAW"]))
    assert sorted(_values(only_raw, "RAW")) == [[40], [50]]
    assert all(r.as_numpy("OUT") is None for r in only_raw)


def test_mixed_origins_are_refused_at_load_and_others_keep_serving(engine: InferenceEngine) -> None:
    index = {m["name"]: m for m in engine.repository_index()}
    assert index["ens_mixed"]["state"] == "UNAVAILABLE"
    assert index["ens_mixed"]["reason"] == (
        "in ensemble ens_mixed, step of model 'scale_py' receives inputs originated from different decoupled models"
    )
    assert index["ens_two_origins"]["reason"] == (
        "in ensemble ens_two_origins, step of model 'ens_two_origins' receives inputs originated from different "
        "decoupled models"
    )
    assert index["ens_stream"]["state"] == "READY"
    assert _values(engine.stream_infer("ens_stream", {"IN": np.array([1, 4], np.int32)})) == [[40]]


def test_an_error_mid_stream_ends_the_stream_after_the_good_responses(engine: InferenceEngine) -> None:
    with pytest.raises(TritonLiteError) as direct:
        engine.infer("raising_py", {"INPUT0": np.array([-1], np.int32)})
    stream = engine.stream_infer("ens_raise", {"IN": np.array([4, 1], np.int32)})  # raw = 1, 0, -1, -2
    assert _values([next(stream), next(stream)]) == [[2], [0]]
    with pytest.raises(TritonLiteError) as mid:
        for _ in range(3):
            next(stream)
    assert type(mid.value) is type(direct.value) and str(mid.value) == str(direct.value)
    assert "negative input is not allowed" in str(mid.value)
    assert _stats(engine, "ens_raise")["inference_stats"]["fail"]["count"] == 1
    good = engine.stream_infer("ens_raise", {"IN": np.array([2, 1], np.int32)})
    assert _values(good) == [[2], [0]]


def test_cancelling_the_stream_reaches_the_generator(engine: InferenceEngine, sync_module: str) -> None:
    stream = engine.stream_infer("ens_slow", {"IN": np.array([500, 0], np.int32)})  # 500 x 10 ms unless cancelled
    assert _values([next(stream), next(stream)]) == [[0], [-10]]
    stream.cancel()
    with pytest.raises(CancelledError, match="Request was cancelled"):
        for _ in range(500):
            next(stream)
    assert sys.modules[sync_module].CANCELLED.wait(5), "the generator never saw the cancellation"
    # the generator's one instance is free again: a new stream runs to its end
    assert _values(engine.stream_infer("ens_slow", {"IN": np.array([2, 3], np.int32)})) == [[30], [20]]


def test_response_parameters_drive_a_sequence_model(engine: InferenceEngine) -> None:
    results = list(engine.stream_infer("ens_seq", {"IN": np.array([3, 3], np.int32)}))
    # running sum of 3, 2, 1 in sequence 77: START on the first response, END on the last
    assert _values(results) == [[3, 1, 0, 77], [5, 0, 0, 77], [6, 0, 1, 77]]
    again = list(engine.stream_infer("ens_seq", {"IN": np.array([2, 5], np.int32)}))
    assert _values(again) == [[5, 1, 0, 77], [9, 0, 1, 77]]


def test_grpc_model_stream_infer_streams_the_ensemble(engine: InferenceEngine) -> None:
    pytest.importorskip("tritonclient.grpc")
    import tritonclient.grpc as grpcclient

    from tritonlite.grpc import GrpcServer

    server = GrpcServer(engine, "127.0.0.1", 0).start()
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    got: queue.Queue[tuple[Any, Any]] = queue.Queue()
    try:
        client.start_stream(callback=lambda result, error: got.put((result, error)))
        inp = grpcclient.InferInput("IN", [2], "INT32")
        inp.set_data_from_numpy(np.array([3, 2], np.int32))
        client.async_stream_infer("ens_stream", [inp], request_id="r1", enable_empty_final_response=True)
        seen: list[Any] = []
        final = False
        while not final and len(seen) < 5:
            result, error = got.get(timeout=10)
            assert error is None, error
            seen.append(result)
            final = result.get_response().parameters["triton_final_response"].bool_param
        # the final flag rides on the last response, or comes alone when the generator closed last
        with_data = [r for r in seen if r.as_numpy("OUT") is not None]
        assert [r.as_numpy("OUT").tolist() for r in with_data] == [[20], [10], [0]]
        assert final and len(seen) in (3, 4) and all(r.get_response().id == "r1" for r in seen)
    finally:
        client.stop_stream()
        client.close()
        server.stop(grace=0)
