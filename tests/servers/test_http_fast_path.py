"""The HTTP infer hot path (issue 10): cached binary-header decode, orjson tensors, loop-side
completions, and short models run on the event-loop thread. Real server, real tritonclient."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import tritonclient.http as httpclient

from http_raw import error_of, request
from model_repos import identity_py_config, write_model

from tritonlite import InferenceEngine
from tritonlite.http import HttpServer
from tritonlite.protocol.loop import LoopCompletions

THREAD_PY = """
import numpy as np
import threading
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        name = threading.current_thread().name.encode()
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", np.array([name], dtype=object))]) for _ in requests]
"""

IDENTITY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
                for r in requests]
"""


@pytest.fixture(scope="module")
def fast_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fast") / "models"
    write_model(root, "ident", identity_py_config("ident", dims="[ -1 ]"), {"1/model.py": IDENTITY})
    write_model(root, "batched", identity_py_config("batched", dims="[ 4 ]", max_batch=8, extra="dynamic_batching { }"),
                {"1/model.py": IDENTITY})
    thread_cfg = """
        name: "where"
        backend: "python"
        max_batch_size: 0
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 1 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_STRING dims: [ 1 ] } ]
    """
    write_model(root, "where", thread_cfg, {"1/model.py": THREAD_PY})
    with InferenceEngine(Path(root)) as engine, HttpServer(engine, "127.0.0.1", 0) as server:
        yield f"127.0.0.1:{server.port}"


def _binary_infer(client: httpclient.InferenceServerClient, model: str, x: np.ndarray, binary_out: bool = True) -> np.ndarray:
    inp = httpclient.InferInput("INPUT0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    out = httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary_out)
    return client.infer(model, [inp], outputs=[out]).as_numpy("OUTPUT0")


def test_repeated_binary_headers_decode_each_body(fast_url: str) -> None:
    client = httpclient.InferenceServerClient(fast_url)
    try:
        # the same JSON header every time (cached after the first), different payloads
        for i in range(5):
            x = np.arange(6, dtype=np.float32) + i
            y = _binary_infer(client, "ident", x)
            assert y.dtype == np.float32 and y.shape == (6,) and np.array_equal(y, x)
        # another shape is another header; then back to the first one
        assert np.array_equal(_binary_infer(client, "ident", np.ones(3, np.float32)), np.ones(3, np.float32))
        assert np.array_equal(_binary_infer(client, "ident", np.full(6, 7, np.float32)), np.full(6, 7, np.float32))
    finally:
        client.close()


def test_cached_header_with_a_short_body_gets_the_full_error(fast_url: str) -> None:
    header = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 16}}]}).encode()
    ihcl = {"Inference-Header-Content-Length": str(len(header))}
    status, _, _ = request(fast_url, "POST", "/v2/models/ident/infer", header + b"\0" * 16, ihcl)
    assert status == 200
    status, _, data = request(fast_url, "POST", "/v2/models/ident/infer", header + b"\0" * 10, ihcl)
    assert status == 400
    assert error_of(data) == "unexpected size for input 'INPUT0', expecting 6 additional bytes for model 'ident'"


def test_json_tensors_round_trip_4096_floats_and_keep_nan(fast_url: str) -> None:
    x = np.random.default_rng(1).random(4096, dtype=np.float32)
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [4096], "datatype": "FP32", "data": x.tolist()}]})
    status, headers, data = request(fast_url, "POST", "/v2/models/ident/infer", body)
    assert status == 200 and headers["content-type"] == "application/json"
    out = json.loads(data)["outputs"][0]
    assert out["datatype"] == "FP32" and out["shape"] == [4096]
    assert np.array_equal(np.array(out["data"], dtype=np.float32), x)
    # NaN / Infinity are printed as before (json's NaN and Infinity), not as null
    x = np.array([1.5, np.nan, np.inf], np.float32)
    client = httpclient.InferenceServerClient(fast_url)
    try:
        y = _binary_infer(client, "ident", x, binary_out=False)
    finally:
        client.close()
    assert y[0] == 1.5 and np.isnan(y[1]) and np.isinf(y[2])


def test_dynamic_batching_answers_every_concurrent_request(fast_url: str) -> None:
    async def run() -> list[np.ndarray]:
        import tritonclient.http.aio as aioclient

        client = aioclient.InferenceServerClient(fast_url)
        try:
            async def one(i: int) -> np.ndarray:
                inp = aioclient.InferInput("INPUT0", [1, 4], "FP32")
                inp.set_data_from_numpy(np.full((1, 4), i, np.float32), binary_data=i % 2 == 0)
                return (await client.infer("batched", [inp])).as_numpy("OUTPUT0")

            return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(48))), 30)
        finally:
            await client.close()

    outs = asyncio.run(run())
    for i, y in enumerate(outs):
        assert y.shape == (1, 4) and np.array_equal(y, np.full((1, 4), i, np.float32))


def test_short_model_runs_on_the_event_loop_thread_once_measured(fast_url: str) -> None:
    client = httpclient.InferenceServerClient(fast_url)
    try:
        seen = [_binary_infer(client, "where", np.zeros(1, np.float32))[0].decode() for _ in range(12)]
    finally:
        client.close()
    # the first requests (no compute time known yet) run on the instance thread, later ones inline
    assert seen[0] == "tritonlite.where.where_0"
    assert seen[-1].startswith("tritonlite.http.server")


def test_loop_completions_wake_the_loop_once_per_burst() -> None:
    loop = asyncio.new_event_loop()
    try:
        ran: list[tuple[int, int]] = []
        wakeups = []
        completions = loop.run_until_complete(_make(loop))
        original = loop.call_soon_threadsafe

        def counting(*args: object) -> object:
            wakeups.append(1)
            return original(*args)  # type: ignore[arg-type]

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]

        def producer() -> None:
            for i in range(16):
                completions.push(lambda i=i: ran.append((i, threading.get_ident())))

        t = threading.Thread(target=producer)
        t.start()
        t.join()
        loop.run_until_complete(asyncio.sleep(0.01))
        assert [i for i, _ in ran] == list(range(16))
        assert {tid for _, tid in ran} == {threading.get_ident()}  # on the loop's thread
        assert len(wakeups) == 1
        completions.push(lambda: ran.append((99, 0)))  # from the loop's thread: runs at once
        assert ran[-1] == (99, 0)
    finally:
        loop.close()


async def _make(loop: asyncio.AbstractEventLoop) -> LoopCompletions:
    return LoopCompletions(loop)
