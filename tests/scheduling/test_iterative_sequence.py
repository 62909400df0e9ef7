"""``sequence_batching { iterative_sequence: true }``: a model reschedules its request with
``TRITONSERVER_REQUEST_RELEASE_RESCHEDULE`` and the sequence batcher runs it again, with the control
inputs filled in, until the model releases it; real model.py models that count down."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from tritonlite import InferenceEngine
from tritonlite.errors import InternalError, InvalidArgumentError

from model_repos import write_model

#: non-decoupled countdown: IN = [n]; runs n times, then answers OUT = [runs, starts seen, corrid != 0]
COUNTDOWN_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.left, self.runs, self.starts = {}, {}, {}

    def execute(self, requests):
        responses = []
        for request in requests:
            cid = request.correlation_id()
            if cid == 0:  # a direct batch's padding slot: its response is discarded
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.zeros((1, 3), np.int32))]))
                continue
            start = int(pb_utils.get_input_tensor_by_name(request, "START").as_numpy().reshape(-1)[0])
            if start:
                self.left[cid] = int(pb_utils.get_input_tensor_by_name(request, "IN").as_numpy().reshape(-1)[0])
                self.runs[cid] = self.starts[cid] = 0
            self.runs[cid] += 1
            self.starts[cid] += start
            self.left[cid] -= 1
            if self.left[cid] > 0:
                request.set_release_flags(pb_utils.TRITONSERVER_REQUEST_RELEASE_RESCHEDULE)
                responses.append(None)
            else:
                out = np.array([[self.runs[cid], self.starts[cid], int(cid != 0)]], np.int32)
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", out)]))
        return responses
"""

#: decoupled countdown (python_backend README): IN = [n] streams OUT = n-1, ..., 0, one per execution
STREAM_COUNTDOWN_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.left = {}

    def execute(self, requests):
        for request in requests:
            cid = request.correlation_id()
            if cid not in self.left:
                self.left[cid] = int(pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()[0])
            sender = request.get_response_sender()
            self.left[cid] -= 1
            response = pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([self.left[cid]], np.int32))])
            if self.left[cid] <= 0:
                del self.left[cid]
                sender.send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            else:
                request.set_release_flags(pb_utils.TRITONSERVER_REQUEST_RELEASE_RESCHEDULE)
                sender.send(response)
        return None
"""

#: no sequence batcher: IN >= 2 asks for a reschedule nobody will honour; else OUT = [1, 0, 0]
PLAIN_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            if int(pb_utils.get_input_tensor_by_name(request, "IN").as_numpy().reshape(-1)[0]) >= 2:
                request.set_release_flags(pb_utils.TRITONSERVER_REQUEST_RELEASE_RESCHEDULE)
                responses.append(None)
            else:
                responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([[1, 0, 0]], np.int32))]))
        return responses
"""

#: misuse: reschedules and still returns a response
RETURNS_ANYWAY_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            request.set_release_flags(pb_utils.TRITONSERVER_REQUEST_RELEASE_RESCHEDULE)
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([1], np.int32))]) for _ in requests]
"""


def _config(name: str, *, iterative: bool = True, decoupled: bool = False, max_batch: int = 4, sequence: bool = True,
            strategy: str = "") -> str:
    controls = """
      control_input [ { name: "START" control [ { kind: CONTROL_SEQUENCE_START int32_false_true: [ 0, 1 ] } ] } ]
    """ if max_batch else ""
    batching = f"sequence_batching {{ iterative_sequence: {str(iterative).lower()} {controls} {strategy} }}" if sequence else ""
    policy = "model_transaction_policy { decoupled: true }" if decoupled else ""
    dims = "[ 1 ]"
    out_dims = "[ 3 ]" if not decoupled else "[ 1 ]"
    return f"""
        name: "{name}"
        backend: "python"
        max_batch_size: {max_batch}
        input [ {{ name: "IN" data_type: TYPE_INT32 dims: {dims} }} ]
        output [ {{ name: "OUT" data_type: TYPE_INT32 dims: {out_dims} }} ]
        {batching}
        {policy}
    """


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferenceEngine]:
    root = tmp_path_factory.mktemp("iterative") / "models"
    # oldest strategy: each batch mixes sequences at different iterations (continuous batching)
    write_model(root, "countdown", _config("countdown", strategy="oldest { max_candidate_sequences: 4 }"),
                {"1/model.py": COUNTDOWN_PY})
    # direct strategy: a sequence keeps its slot while it iterates; idle slots are padded
    write_model(root, "countdown_direct", _config("countdown_direct"), {"1/model.py": COUNTDOWN_PY})
    # one sequence slot: sequences wait in the backlog until a finished one frees the slot
    write_model(root, "countdown_one_slot", _config("countdown_one_slot", max_batch=1), {"1/model.py": COUNTDOWN_PY})
    write_model(root, "stream_countdown", _config("stream_countdown", decoupled=True, max_batch=0),
                {"1/model.py": STREAM_COUNTDOWN_PY})
    write_model(root, "not_iterative", _config("not_iterative", iterative=False), {"1/model.py": COUNTDOWN_PY})
    write_model(root, "plain_rescheduler", _config("plain_rescheduler", sequence=False), {"1/model.py": PLAIN_PY})
    write_model(root, "returns_anyway", _config("returns_anyway", max_batch=0), {"1/model.py": RETURNS_ANYWAY_PY})
    with InferenceEngine(root) as eng:
        yield eng


def _stats(engine: InferenceEngine, name: str) -> dict[str, Any]:
    return engine.model_statistics(name)["model_stats"][0]


def _n(value: int) -> dict[str, np.ndarray]:
    return {"IN": np.array([[value]], np.int32)}


def test_one_request_runs_until_the_model_releases_it(engine: InferenceEngine) -> None:
    before = _stats(engine, "countdown")["execution_count"]
    result = engine.infer("countdown", _n(3))
    # three executions, START only on the first, an internal correlation id filled in
    assert result.as_numpy("OUT").tolist() == [[3, 1, 1]]
    stats = _stats(engine, "countdown")
    assert stats["execution_count"] - before == 3
    assert stats["inference_stats"]["success"]["count"] >= 1


@pytest.mark.parametrize("model", ["countdown", "countdown_direct"])
def test_concurrent_sequences_interleave_and_all_finish(engine: InferenceEngine, model: str) -> None:
    sizes = (1, 2, 5, 3, 4, 2)  # more sequences than the 4 slots: the backlog is used too
    futures = [engine.submit(model, _n(n)) for n in sizes]
    assert [f.result(timeout=20).as_numpy("OUT").tolist() for f in futures] == [[[n, 1, 1]] for n in sizes]


def test_a_finished_sequence_frees_its_slot_for_the_backlog(engine: InferenceEngine) -> None:
    futures = [engine.submit("countdown_one_slot", _n(n)) for n in (2, 3, 1)]
    assert [f.result(timeout=20).as_numpy("OUT").tolist() for f in futures] == [[[2, 1, 1]], [[3, 1, 1]], [[1, 1, 1]]]
    assert _stats(engine, "countdown_one_slot")["execution_count"] == 6


def test_a_client_sequence_id_is_kept(engine: InferenceEngine) -> None:
    result = engine.infer("countdown", _n(2), sequence_id=4242, sequence_start=True)
    assert result.as_numpy("OUT").tolist() == [[2, 1, 1]]
    # the sequence ended when the model released the request: the id needs START again
    with pytest.raises(InvalidArgumentError, match="sequence 4242 to model 'countdown' must specify the START flag"):
        engine.infer("countdown", _n(2), sequence_id=4242)


def test_a_decoupled_model_streams_one_response_per_iteration(engine: InferenceEngine) -> None:
    results = list(engine.stream_infer("stream_countdown", {"IN": np.array([4], np.int32)}))
    assert [r.as_numpy("OUT").tolist() for r in results] == [[3], [2], [1], [0]]
    assert _stats(engine, "stream_countdown")["execution_count"] == 4
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        streams = list(pool.map(lambda n: [r.as_numpy("OUT")[0] for r in engine.stream_infer(
            "stream_countdown", {"IN": np.array([n], np.int32)})], (2, 3, 1)))
    assert [list(map(int, s)) for s in streams] == [[1, 0], [2, 1, 0], [0]]


@pytest.mark.parametrize("model", ["not_iterative", "plain_rescheduler"])
def test_rescheduling_without_iterative_sequence_is_an_error(engine: InferenceEngine, model: str) -> None:
    options = {"sequence_id": 9, "sequence_start": True} if model == "not_iterative" else {}
    with pytest.raises(InvalidArgumentError) as err:
        engine.infer(model, _n(2), **options)
    assert str(err.value) == (
        "Request is released with TRITONSERVER_REQUEST_RELEASE_RESCHEDULE, while the model is not configured to "
        "handle such a flag."
    )
    options = {"sequence_id": 10, "sequence_start": True} if model == "not_iterative" else {}
    # the engine keeps serving the model
    assert engine.infer(model, _n(1), **options).as_numpy("OUT").tolist() == ([[1, 1, 1]] if options else [[1, 0, 0]])


def test_a_response_for_a_rescheduled_request_is_an_error(engine: InferenceEngine) -> None:
    with pytest.raises(InternalError, match="Expected a None object in the execute function return list for reschduled request"):
        engine.infer("returns_anyway", {"IN": np.array([1], np.int32)})
    # the sequence was released with the failure: a new request starts a new one and fails the same way
    with pytest.raises(InternalError, match="reschduled request"):
        engine.infer("returns_anyway", {"IN": np.array([1], np.int32)})
