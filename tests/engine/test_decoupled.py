"""Decoupled (streaming) models through the engine: stream_infer, async for, BLS decoupled, cancellation."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from tritonlite import CancelledError, InferenceEngine, InternalError, NotFoundError, UnsupportedError

from model_repos import IDENTITY_PY, identity_py_config, write_model

DECOUPLED_CFG = """
name: "{name}"
backend: "python"
model_transaction_policy {{ decoupled: true }}
input [ {{ name: "IN" data_type: TYPE_INT32 dims: [ -1 ] }} ]
output [ {{ name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] }}, {{ name: "IDX" data_type: TYPE_UINT32 dims: [ 1 ] }} ]
"""

REPEAT_PY = """
import threading, time
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        for request in requests:
            values = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy().copy()
            threading.Thread(target=self._send, args=(request, values), daemon=True).start()
        return None

    def _send(self, request, values):
        sender = request.get_response_sender()
        for idx, value in enumerate(values):
            if value < 0:
                sender.send(pb_utils.InferenceResponse(error=pb_utils.TritonError(f"negative value at {idx}")),
                            flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return
            if value == 999:  # wait until the client cancels, then stop
                deadline = time.monotonic() + 10
                while not request.is_cancelled() and time.monotonic() < deadline:
                    time.sleep(0.002)
                with open(pb_utils.get_model_dir() + "/cancel_seen", "w") as fh:
                    fh.write(str(request.is_cancelled()))
                sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
                return
            sender.send(pb_utils.InferenceResponse([pb_utils.Tensor("OUT", np.array([value], np.int32)),
                                                    pb_utils.Tensor("IDX", np.array([idx], np.uint32))]))
        sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
"""

BLS_PY = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            bls = pb_utils.InferenceRequest(model_name="repeat", requested_output_names=["OUT"],
                                            inputs=[pb_utils.Tensor("IN", x.astype(np.int32))])
            values = []
            for resp in bls.exec(decoupled=True):
                if resp.has_error():
                    raise pb_utils.TritonModelException(resp.error().message())
                t = pb_utils.get_output_tensor_by_name(resp, "OUT")
                if t is not None:
                    values.append(int(t.as_numpy()[0]))
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", np.array(values, np.int32))]))
        return out
"""


@pytest.fixture
def engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    write_model(tmp_path, "repeat", DECOUPLED_CFG.format(name="repeat"), {"1/model.py": REPEAT_PY})
    write_model(tmp_path, "identity_py", identity_py_config("identity_py"), {"1/model.py": IDENTITY_PY})
    write_model(tmp_path, "bls_repeat", identity_py_config("bls_repeat", dims="[ -1 ]", dtype="TYPE_INT32"), {"1/model.py": BLS_PY})
    with InferenceEngine(tmp_path) as eng:
        yield eng


def test_stream_yields_every_response_in_order(engine: InferenceEngine) -> None:
    results = list(engine.stream_infer("repeat", {"IN": np.array([4, 5, 6], np.int32)}, request_id="s1"))
    assert [int(r.as_numpy("OUT")[0]) for r in results] == [4, 5, 6]
    assert [int(r.as_numpy("IDX")[0]) for r in results] == [0, 1, 2]
    assert all(r.model_name == "repeat" and r.id == "s1" and r.as_numpy("OUT").dtype == np.int32 for r in results)
    stats = engine.model_statistics("repeat")["model_stats"][0]
    assert stats["inference_stats"]["success"]["count"] == 1
    assert sorted(stats["response_stats"]) == ["0", "1", "2", "3"]
    assert stats["response_stats"]["0"]["success"]["count"] == 1
    assert stats["response_stats"]["3"]["empty_response"]["count"] == 1


def test_zero_responses_is_an_empty_stream(engine: InferenceEngine) -> None:
    assert list(engine.stream_infer("repeat", {"IN": np.array([], np.int32)})) == []


def test_async_for(engine: InferenceEngine) -> None:
    async def collect() -> list[int]:
        return [int(r.as_numpy("OUT")[0]) async for r in engine.stream_infer("repeat", {"IN": np.arange(5, dtype=np.int32)})]

    assert asyncio.run(collect()) == [0, 1, 2, 3, 4]


def test_error_response_raises_and_ends_the_stream(engine: InferenceEngine) -> None:
    stream = engine.stream_infer("repeat", {"IN": np.array([1, -1, 3], np.int32)})
    assert int(next(stream).as_numpy("OUT")[0]) == 1
    with pytest.raises(InternalError, match="negative value at 1"):
        next(stream)
    with pytest.raises(StopIteration):
        next(stream)
    assert engine.model_statistics("repeat")["model_stats"][0]["inference_stats"]["fail"]["count"] == 1


def test_infer_on_a_decoupled_model_is_a_clear_error(engine: InferenceEngine) -> None:
    with pytest.raises(UnsupportedError, match="model 'repeat' uses the decoupled transaction policy: use stream_infer"):
        engine.infer("repeat", {"IN": np.array([1], np.int32)})


def test_stream_on_a_regular_model_yields_one_result(engine: InferenceEngine) -> None:
    results = list(engine.stream_infer("identity_py", {"INPUT0": np.arange(4, dtype=np.float32)}))
    assert len(results) == 1
    np.testing.assert_array_equal(results[0].as_numpy("OUTPUT0"), np.arange(4, dtype=np.float32))


def test_stream_errors_for_unknown_models(engine: InferenceEngine) -> None:
    with pytest.raises(NotFoundError, match="Request for unknown model: 'ghost' is not found"):
        list(engine.stream_infer("ghost", {"IN": np.array([1], np.int32)}))


def test_cancel_ends_the_stream_and_the_model_sees_it(engine: InferenceEngine, tmp_path: Path) -> None:
    model_dir = tmp_path / "repeat"
    stream = engine.stream_infer("repeat", {"IN": np.array([7, 999], np.int32)})
    assert int(next(stream).as_numpy("OUT")[0]) == 7
    stream.cancel()
    with pytest.raises(CancelledError):
        next(stream)
    marker = model_dir / "cancel_seen"  # the model writes what request.is_cancelled() said
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert marker.read_text() == "True"
    # the engine keeps serving
    assert [int(r.as_numpy("OUT")[0]) for r in engine.stream_infer("repeat", {"IN": np.array([3], np.int32)})] == [3]


def test_bls_decoupled_exec_iterates_responses(engine: InferenceEngine) -> None:
    out = engine.infer("bls_repeat", {"INPUT0": np.array([9, 8, 7], np.int32)}).as_numpy("OUTPUT0")
    np.testing.assert_array_equal(out, np.array([9, 8, 7], np.int32))
    with pytest.raises(InternalError, match="negative value at 0"):
        engine.infer("bls_repeat", {"INPUT0": np.array([-5], np.int32)})
    # BLS requests are ordinary requests: they appear in the composing model's statistics
    assert engine.model_statistics("repeat")["model_stats"][0]["inference_stats"]["success"]["count"] == 1
