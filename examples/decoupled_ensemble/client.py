"""An ensemble with a decoupled (streaming) step: tokenizer -> generator -> detokenizer.

    python examples/decoupled_ensemble/client.py [PROMPT]                 # in-process: engine.stream_infer

    tritonlite serve --model-repository examples/decoupled_ensemble/model_repository
    python examples/decoupled_ensemble/client.py --grpc 127.0.0.1:8001 [PROMPT]   # tritonclient gRPC stream

The generator sends one response per token, so the ensemble ``pipeline`` is decoupled too: every
generator response flows through the detokenizer and reaches the client as its own response, as
it is produced. Here the "generated" text is the prompt spelled backwards, one character a response.
"""

from __future__ import annotations

import argparse
import queue
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent / "model_repository"


def in_process(prompt: str) -> None:
    from tritonlite import InferenceEngine

    with InferenceEngine(REPO) as engine:
        print(f"pipeline transaction policy: {engine.model_config('pipeline')['model_transaction_policy']}")
        pieces = []
        for result in engine.stream_infer("pipeline", {"PROMPT": np.array([prompt.encode()], dtype=np.object_)}):
            pieces.append(result.as_numpy("TEXT")[0].decode())  # each arrives as soon as it is made
        print(f"in-process stream: {' '.join(repr(p) for p in pieces)} -> {''.join(pieces)!r} ({len(pieces)} responses)")


def over_grpc(url: str, prompt: str) -> None:
    import tritonclient.grpc as grpcclient

    responses: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(url)
    try:
        client.start_stream(callback=lambda result, error: responses.put((result, error)))
        text = grpcclient.InferInput("PROMPT", [1], "BYTES")
        text.set_data_from_numpy(np.array([prompt.encode()], dtype=np.object_))
        # ask for the final flag as a response of its own, so the client knows the stream of this request ended
        client.async_stream_infer("pipeline", [text], request_id="p1", enable_empty_final_response=True)
        pieces = []
        while True:
            result, error = responses.get(timeout=60)
            if error is not None:
                raise SystemExit(f"stream error: {error}")
            response = result.get_response()
            if response.outputs:
                pieces.append(result.as_numpy("TEXT")[0].decode())
            if response.parameters["triton_final_response"].bool_param:
                break
        client.stop_stream()
    finally:
        client.close()
    print(f"grpc stream: {' '.join(repr(p) for p in pieces)} -> {''.join(pieces)!r} ({len(pieces)} responses, then the final flag)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompt", nargs="?", default="hello")
    parser.add_argument("--grpc", help="gRPC endpoint of a server with this model repository (default: in-process)")
    args = parser.parse_args()
    if args.grpc:
        over_grpc(args.grpc, args.prompt)
    else:
        in_process(args.prompt)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
