"""ModelStreamInfer with the real tritonclient (``start_stream``/``async_stream_infer`` and the aio
``stream_infer``): decoupled and regular models, final flags, empty finals, errors, ordering,
``triton_grpc_error`` mode, cancellation and malformed messages."""

from __future__ import annotations

import asyncio
import queue
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import grpc
import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")

import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.grpc.aio as aioclient  # noqa: E402
from tritonclient.grpc import service_pb2 as theirs  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from test_grpc_service import Env, build_repository  # noqa: E402


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(build_repository(tmp_path_factory.mktemp("grpc_stream") / "models", full=False))
    yield e
    e.close()


class Collector:
    """A stream callback that queues (result, error) pairs."""

    def __init__(self) -> None:
        self.q: queue.Queue[tuple[Any, Any]] = queue.Queue()

    def __call__(self, result: Any, error: Any) -> None:
        self.q.put((result, error))

    def take(self, n: int, timeout: float = 10.0) -> list[tuple[Any, Any]]:
        return [self.q.get(timeout=timeout) for _ in range(n)]

    def none_left(self, wait: float = 0.2) -> bool:
        time.sleep(wait)
        return self.q.empty()


def _repeat_input(values: list[int]) -> list[grpcclient.InferInput]:
    inp = grpcclient.InferInput("IN", [len(values)], "INT32")
    inp.set_data_from_numpy(np.array(values, np.int32))
    return [inp]


def _identity_input(x: np.ndarray) -> list[grpcclient.InferInput]:
    inp = grpcclient.InferInput("INPUT0", [4], "FP32")
    inp.set_data_from_numpy(x)
    return [inp]


def _final(result: Any) -> bool:
    return result.get_response().parameters["triton_final_response"].bool_param


@pytest.fixture
def stream(env: Env) -> Iterator[tuple[grpcclient.InferenceServerClient, Collector]]:
    client = grpcclient.InferenceServerClient(env.url)
    collector = Collector()
    client.start_stream(callback=collector)
    yield client, collector
    client.stop_stream()
    client.close()


def test_decoupled_responses_with_final_flags(stream: Any) -> None:
    client, got = stream
    client.async_stream_infer("repeat", _repeat_input([4, 5, 6]), request_id="r1")
    items = got.take(3)
    assert [e for _, e in items] == [None, None, None]
    results = [r for r, _ in items]
    assert [int(r.as_numpy("OUT")[0]) for r in results] == [4, 5, 6]
    assert [int(r.as_numpy("IDX")[0]) for r in results] == [0, 1, 2]
    assert all(r.get_response().id == "r1" and r.get_response().model_name == "repeat" for r in results)
    assert [_final(r) for r in results] == [False, False, False]  # FINAL came alone, and was not asked for
    assert got.none_left()


def test_empty_final_response_when_asked(stream: Any) -> None:
    client, got = stream
    client.async_stream_infer("repeat", _repeat_input([1, 2]), request_id="e1", enable_empty_final_response=True)
    results = [r for r, _ in got.take(3)]
    assert [_final(r) for r in results] == [False, False, True]
    last = results[-1].get_response()
    assert (last.id, last.model_name, list(last.outputs)) == ("e1", "repeat", [])
    client.async_stream_infer("repeat", _repeat_input([]), request_id="e2", enable_empty_final_response=True)
    (only, error), = got.take(1)
    assert error is None and _final(only) and only.get_response().id == "e2"


def test_regular_models_answer_once_in_request_order(stream: Any) -> None:
    client, got = stream
    for i in range(6):
        client.async_stream_infer("identity_py", _identity_input(np.full(4, i, np.float32)), request_id=f"n{i}")
    results = [r for r, _ in got.take(6)]
    assert [r.get_response().id for r in results] == [f"n{i}" for i in range(6)]
    assert all(_final(r) for r in results)
    np.testing.assert_array_equal(results[5].as_numpy("OUTPUT0"), np.full(4, 5, np.float32))


def test_per_request_errors_keep_the_stream_open(stream: Any) -> None:
    client, got = stream
    client.async_stream_infer("ghost", _identity_input(np.ones(4, np.float32)), request_id="g1")
    (result, error), = got.take(1)
    assert result is None and isinstance(error, InferenceServerException)
    assert "Request for unknown model: 'ghost' is not found" in error.message()
    client.async_stream_infer("identity_py", [grpcclient.InferInput("INPUT0", [5], "FP32").set_data_from_numpy(np.ones(5, np.float32))])
    (_, error), = got.take(1)
    assert "unexpected shape for input 'INPUT0'" in error.message()
    client.async_stream_infer("raising_py", _identity_input(-np.ones(4, np.float32)))
    (_, error), = got.take(1)
    assert "negative input is not allowed" in error.message()
    client.async_stream_infer("repeat", _repeat_input([7, -2, 8, -1]))
    items = got.take(4)
    assert int(items[0][0].as_numpy("OUT")[0]) == 7
    assert "soft error at 1" in items[1][1].message()  # an error without FINAL: more responses follow
    assert int(items[2][0].as_numpy("OUT")[0]) == 8
    assert "negative value at 3" in items[3][1].message()
    client.async_stream_infer("identity_py", _identity_input(np.ones(4, np.float32)))
    (result, error), = got.take(1)
    assert error is None and result.as_numpy("OUTPUT0").tolist() == [1, 1, 1, 1]


def test_stream_sequence_with_string_ids(stream: Any) -> None:
    client, got = stream

    def send(value: int, **kwargs: Any) -> None:
        inp = grpcclient.InferInput("INPUT", [1], "INT32")
        inp.set_data_from_numpy(np.array([value], np.int32))
        client.async_stream_infer("seq_str", [inp], sequence_id="stream-seq", **kwargs)

    send(2, sequence_start=True)
    send(3)
    send(4, sequence_end=True)
    assert [int(r.as_numpy("OUTPUT")[0]) for r, _ in got.take(3)] == [2, 5, 9]


def test_aio_stream_infer(env: Env) -> None:
    async def main() -> list[tuple[str, int, bool]]:
        async with aioclient.InferenceServerClient(env.url) as client:

            async def requests() -> AsyncIterator[dict[str, Any]]:
                for rid, values in (("a", [1, 2, 3]), ("b", [10, 20])):
                    inp = aioclient.InferInput("IN", [len(values)], "INT32")
                    inp.set_data_from_numpy(np.array(values, np.int32))
                    yield {"model_name": "repeat", "inputs": [inp], "request_id": rid}

            seen = []
            async for result, error in client.stream_infer(requests()):
                assert error is None
                resp = result.get_response()
                out = result.as_numpy("OUT")
                seen.append((resp.id, int(out[0]), _final(result)))
            return seen  # the call ends once the requests are sent and every response is in

    seen = asyncio.run(main())
    assert [s for s in seen if s[0] == "a"] == [("a", 1, False), ("a", 2, False), ("a", 3, False)]
    assert [s for s in seen if s[0] == "b"] == [("b", 10, False), ("b", 20, False)]


def test_triton_grpc_error_mode_ends_the_stream_with_the_status(env: Env) -> None:
    client = grpcclient.InferenceServerClient(env.url)
    got = Collector()
    client.start_stream(callback=got, headers={"triton_grpc_error": "true"})
    try:
        client.async_stream_infer("repeat", _repeat_input([1, -1]))
        items = got.take(2)
        assert int(items[0][0].as_numpy("OUT")[0]) == 1
        error = items[1][1]
        assert error.status() == "StatusCode.INTERNAL" and "negative value at 1" in error.message()
    finally:
        client.stop_stream()
        client.close()


def _wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.01)
    raise AssertionError(f"{path} was never written")


def test_cancelling_the_stream_cancels_its_requests(env: Env) -> None:
    marker = env.root / "repeat" / "cancel_seen"
    marker.unlink(missing_ok=True)
    client = grpcclient.InferenceServerClient(env.url)
    got = Collector()
    client.start_stream(callback=got)
    client.async_stream_infer("repeat", _repeat_input([3, 999]))
    (first, error), = got.take(1)
    assert error is None and int(first.as_numpy("OUT")[0]) == 3
    client.stop_stream(cancel_requests=True)
    assert _wait_for(marker) == "True"
    client.close()


def test_malformed_message_on_a_stream(env: Env) -> None:
    good = theirs.ModelInferRequest(model_name="identity_py", id="ok")
    good.inputs.add(name="INPUT0", datatype="FP32", shape=[4])
    good.raw_input_contents.append(np.ones(4, np.float32).tobytes())
    with grpc.insecure_channel(env.url) as channel:
        call = channel.stream_stream(
            "/inference.GRPCInferenceService/ModelStreamInfer", response_deserializer=theirs.ModelStreamInferResponse.FromString
        )
        # Triton 2.51: a message that does not parse ends the input (grpc++ fails the read); what came
        # before it still answers, what comes after is ignored, and the call ends OK
        assert list(call(iter([b"\xff\xff\xff\xff\xff\x0f", good.SerializeToString()]))) == []
        responses = call(iter([good.SerializeToString(), b"\xff\xff\xff\xff\xff\x0f", good.SerializeToString()]))
        got = list(responses)
        assert responses.code() == grpc.StatusCode.OK
    assert [(r.error_message, r.infer_response.id) for r in got] == [("", "ok")]


def test_stream_ends_when_the_client_half_closes(env: Env) -> None:
    reqs = []
    for i in range(3):
        r = theirs.ModelInferRequest(model_name="repeat", id=f"h{i}")
        r.inputs.add(name="IN", datatype="INT32", shape=[2])
        r.raw_input_contents.append(np.array([i, 100 + i], np.int32).tobytes())
        reqs.append(r.SerializeToString())
    with grpc.insecure_channel(env.url) as channel:
        call = channel.stream_stream(
            "/inference.GRPCInferenceService/ModelStreamInfer", response_deserializer=theirs.ModelStreamInferResponse.FromString
        )
        responses = list(call(iter(reqs), timeout=10))  # returns only once every request has finished
    assert sorted((r.infer_response.id, r.error_message) for r in responses) == sorted(
        (f"h{i}", "") for i in range(3) for _ in range(2)
    )
