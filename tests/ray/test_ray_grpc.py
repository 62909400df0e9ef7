"""KServe v2 gRPC (``inference.GRPCInferenceService``) through Serve's gRPC proxy: the official
``tritonclient.grpc``, unchanged, against Serve's gRPC port (one application on the cluster, so no
``application`` metadata is needed). Unary RPCs, errors with Triton's codes and texts, sequences
kept on one replica, ModelStreamInfer (decoupled and sequence requests) and model control."""

from __future__ import annotations

import queue
from typing import Any

import numpy as np
import pytest

from ray_cluster import NEEDS_RAY, Cluster

pytest.importorskip("ray.serve", reason=NEEDS_RAY)
grpcclient = pytest.importorskip("tritonclient.grpc", reason="needs tritonclient[grpc]")

pytestmark = pytest.mark.ray


def _client(cluster: Cluster) -> Any:
    return grpcclient.InferenceServerClient(f"127.0.0.1:{cluster.grpc_port}")


def _add_sub(a: np.ndarray, b: np.ndarray) -> list[Any]:
    inputs = [grpcclient.InferInput("INPUT0", [4], "FP32"), grpcclient.InferInput("INPUT1", [4], "FP32")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    return inputs


def _int32(name: str, value: int, shape: list[int]) -> Any:
    x = grpcclient.InferInput(name, shape, "INT32")
    x.set_data_from_numpy(np.full(shape, value, dtype=np.int32))
    return x


def test_unary_rpcs_and_infer(cluster: Cluster) -> None:
    with _client(cluster) as client:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("add_sub")
        meta = client.get_model_metadata("add_sub", as_json=True)
        assert meta["name"] == "add_sub"
        assert meta["inputs"][0] == {"name": "INPUT0", "datatype": "FP32", "shape": ["4"]}
        assert client.get_model_config("add_sub", as_json=True)["config"]["backend"] == "python"
        a = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
        b = np.full(4, 0.25, dtype=np.float32)
        result = client.infer("add_sub", _add_sub(a, b), request_id="r1")
        assert result.get_response().id == "r1"
        for name, expected in (("OUTPUT0", a + b), ("OUTPUT1", a - b)):
            got = result.as_numpy(name)
            assert got.dtype == np.float32 and got.shape == (4,)
            np.testing.assert_array_equal(got, expected)


def test_statistics_are_summed_over_every_replica(cluster: Cluster) -> None:
    with _client(cluster) as client:
        a = np.ones(4, dtype=np.float32)
        for _ in range(6):
            client.infer("add_sub", _add_sub(a, a))
        over_grpc = client.get_inference_statistics("add_sub", as_json=True)["model_stats"][0]
        summed = cluster.handle.model_statistics.remote("add_sub").result(timeout_s=30)["model_stats"][0]
        assert int(over_grpc["inference_stats"]["success"]["count"]) == summed["inference_stats"]["success"]["count"] >= 6
        with pytest.raises(grpcclient.InferenceServerException) as info:
            client.get_inference_statistics("nope")
        assert info.value.status() == "StatusCode.INVALID_ARGUMENT"  # the gRPC door's answer, from one replica
        assert "requested model 'nope' is not available" in info.value.message()


def test_errors_keep_triton_codes_and_text(cluster: Cluster) -> None:
    a = np.zeros(4, dtype=np.float32)
    with _client(cluster) as client:
        with pytest.raises(grpcclient.InferenceServerException) as info:
            client.infer("nope", _add_sub(a, a))
        assert info.value.status() == "StatusCode.NOT_FOUND"
        assert info.value.message() == "Request for unknown model: 'nope' is not found"
        with pytest.raises(grpcclient.InferenceServerException) as info:
            client.infer("add_sub", [_add_sub(a, a)[0]])
        assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
        assert "expected 2 inputs but got 1 inputs for model 'add_sub'" in info.value.message()
        with pytest.raises(grpcclient.InferenceServerException) as info:
            client.infer("square", [_int32("IN", 2, [1])])
        assert info.value.status() == "StatusCode.UNIMPLEMENTED"
        assert info.value.message() == "ModelInfer RPC doesn't support models with decoupled transaction policy"


def test_sequences_stick_to_one_replica(cluster: Cluster) -> None:
    with _client(cluster) as client:
        pids: dict[int, set[int]] = {}
        totals = dict.fromkeys(range(301, 309), 0)
        for step in range(3):
            for cid in totals:
                r = client.infer("accum", [_int32("INPUT", cid + step, [1, 1])], sequence_id=cid,
                                 sequence_start=step == 0, sequence_end=step == 2)
                totals[cid] += cid + step
                assert int(r.as_numpy("OUTPUT")[0, 0]) == totals[cid]
                pids.setdefault(cid, set()).add(int(r.as_numpy("PID")[0, 0]))
        assert all(len(p) == 1 for p in pids.values()), pids


def test_stream_infer_decoupled_and_sequence(cluster: Cluster) -> None:
    responses: queue.Queue = queue.Queue()
    with _client(cluster) as client:
        client.start_stream(callback=lambda result, error: responses.put((result, error)))
        try:
            client.async_stream_infer("square", [_int32("IN", 3, [1])], request_id="sq",
                                      enable_empty_final_response=True)
            got = [responses.get(timeout=30) for _ in range(4)]
            assert all(error is None for _, error in got), got
            outs = [r.as_numpy("OUT") for r, _ in got[:3]]
            assert all(o is not None and o.dtype == np.int32 and o.tolist() == [3] for o in outs)
            final = got[3][0].get_response()
            assert final.id == "sq" and final.parameters["triton_final_response"].bool_param
            for step, value in enumerate((5, 6, 7)):
                client.async_stream_infer("accum", [_int32("INPUT", value, [1, 1])], sequence_id=777,
                                          sequence_start=step == 0, sequence_end=step == 2)
            sums = [int(responses.get(timeout=30)[0].as_numpy("OUTPUT")[0, 0]) for _ in range(3)]
            assert sums == [5, 11, 18]
            client.async_stream_infer("nope", [_int32("IN", 1, [1])], request_id="bad")
            result, error = responses.get(timeout=30)
            assert result is None and "Request for unknown model: 'nope' is not found" in error.message()
        finally:
            client.stop_stream()


def test_model_control_over_grpc_reaches_every_replica(cluster: Cluster) -> None:
    with _client(cluster) as client:
        client.unload_model("square")
        try:
            ready = cluster.handle.model_ready.remote("square").result(timeout_s=60)
            assert len(ready) == 2 and not any(ready.values())
            assert not client.is_model_ready("square")
        finally:
            client.load_model("square")
        ready = cluster.handle.model_ready.remote("square").result(timeout_s=60)
        assert len(ready) == 2 and all(ready.values())
        assert client.is_server_ready()
