"""A decoupled (streaming) model read two ways: the Python API's stream_infer and tritonclient's gRPC stream.

    python examples/decoupled/client.py
    tritonlite serve --model-repository examples/decoupled/model_repository   # gRPC :8001, ModelStreamInfer

``engine.stream_infer`` returns an iterator (``for`` or ``async for``) that yields each response as
the model sends it and stops after the final flag. Over the network, decoupled models need gRPC's
bidirectional stream: ``tritonclient.grpc``'s ``start_stream`` / ``async_stream_infer``; with
``enable_empty_final_response=True`` the final flag arrives as a last, empty response.
"""

from __future__ import annotations

import queue
from pathlib import Path

import numpy as np

from tritonlite import InferenceEngine

REPO = Path(__file__).resolve().parent / "model_repository"
TEXT = np.array([b"streams arrive one word at a time"], dtype=object)

with InferenceEngine(REPO) as engine:
    # 1. in-process
    words = [r.as_numpy("TOKEN")[0].decode() for r in engine.stream_infer("tokens", {"TEXT": TEXT})]
    print(f"stream_infer: {len(words)} responses: {' | '.join(words)}")

    # 2. over gRPC with the official client (the engine's gRPC door, embedded on a free port)
    try:
        import tritonclient.grpc as grpcclient
        from tritonlite.grpc import GrpcServer
    except ImportError as exc:  # pip install 'tritonlite[grpc]' tritonclient[grpc]
        print(f"gRPC part skipped: {exc}")
        raise SystemExit(0)

    with GrpcServer(engine, port=0) as server:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{server.port}")
        responses: queue.Queue = queue.Queue()
        client.start_stream(callback=lambda result, error: responses.put((result, error)))
        text = grpcclient.InferInput("TEXT", [1], "BYTES")
        text.set_data_from_numpy(TEXT)
        client.async_stream_infer("tokens", [text], request_id="r1", enable_empty_final_response=True)
        received = []
        while True:
            result, error = responses.get(timeout=30)
            if error is not None:
                raise error
            response = result.get_response()
            if response.parameters["triton_final_response"].bool_param:
                break
            received.append(f"{int(result.as_numpy('INDEX')[0])}:{result.as_numpy('TOKEN')[0].decode()}")
        client.stop_stream()
        client.close()
        print(f"tritonclient gRPC stream (request {response.id}): {len(received)} responses, then final: {' '.join(received)}")
