"""The official tritonclient (HTTP and gRPC) against ``tritonlite serve``, unchanged.

    tritonlite serve --model-repository examples/serving/model_repository      # HTTP :8000, gRPC :8001
    python examples/serving/client.py [--http localhost:8000] [--grpc localhost:8001]

Needs ``pip install 'tritonclient[all]'`` on the client side and the ``[http,grpc]`` extras on the server side.
"""

from __future__ import annotations

import argparse
import queue

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException


def simple_inputs(module, a: np.ndarray, b: np.ndarray, *, binary: bool = True) -> list:
    """INPUT0/INPUT1 for the ``simple`` model, built with the given tritonclient module."""
    inputs = [module.InferInput("INPUT0", list(a.shape), "INT32"), module.InferInput("INPUT1", list(b.shape), "INT32")]
    if module is httpclient:
        inputs[0].set_data_from_numpy(a, binary_data=binary)
        inputs[1].set_data_from_numpy(b, binary_data=binary)
    else:
        inputs[0].set_data_from_numpy(a)
        inputs[1].set_data_from_numpy(b)
    return inputs


def over_http(url: str, a: np.ndarray, b: np.ndarray) -> None:
    client = httpclient.InferenceServerClient(url)
    meta = client.get_server_metadata()
    print(f"http: live={client.is_server_live()} ready={client.is_model_ready('simple')} server={meta['name']} {meta['version']}")
    print(f"http: simple inputs {[(i['name'], i['datatype'], i['shape']) for i in client.get_model_metadata('simple')['inputs']]}")
    for binary in (True, False):  # Triton's binary tensor extension, then plain KServe v2 JSON
        outputs = [httpclient.InferRequestedOutput("OUTPUT0", binary_data=binary), httpclient.InferRequestedOutput("OUTPUT1", binary_data=binary)]
        result = client.infer("simple", simple_inputs(httpclient, a, b, binary=binary), outputs=outputs, request_id="h1")
        print(f"http ({'binary' if binary else 'json'}): OUTPUT0[:4]={result.as_numpy('OUTPUT0')[0, :4].tolist()} "
              f"OUTPUT1[:4]={result.as_numpy('OUTPUT1')[0, :4].tolist()} id={result.get_response()['id']}")
    try:
        client.infer("simple", simple_inputs(httpclient, a[:, :8], b[:, :8]))
    except InferenceServerException as exc:
        print(f"http error: {exc.message().split('. NOTE')[0]}")
    client.close()


def over_grpc(url: str, a: np.ndarray, b: np.ndarray) -> None:
    client = grpcclient.InferenceServerClient(url)
    print(f"grpc: live={client.is_server_live()} ready={client.is_model_ready('simple')}")
    result = client.infer("simple", simple_inputs(grpcclient, a, b))
    print(f"grpc: OUTPUT0[:4]={result.as_numpy('OUTPUT0')[0, :4].tolist()} OUTPUT1[:4]={result.as_numpy('OUTPUT1')[0, :4].tolist()}")

    # a decoupled model over a bidirectional stream: one request, one response per element
    responses: queue.Queue = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    stream_input = grpcclient.InferInput("IN", [3], "INT32")
    stream_input.set_data_from_numpy(np.array([7, 8, 9], dtype=np.int32))
    client.async_stream_infer("repeat", [stream_input], request_id="s1")
    got = []
    for _ in range(3):
        result, error = responses.get(timeout=30)
        if error is not None:
            raise error
        got.append((int(result.as_numpy("IDX")[0]), int(result.as_numpy("OUT")[0])))
    client.stop_stream()
    print(f"grpc stream: repeat -> {got}")

    try:
        client.infer("no_such_model", simple_inputs(grpcclient, a, b))
    except InferenceServerException as exc:
        print(f"grpc error: {exc.status()} {exc.message()}")
    stats = client.get_inference_statistics("simple", as_json=True)["model_stats"][0]
    print(f"grpc: simple inference_count={stats['inference_count']}")
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", default="localhost:8000", help="HTTP host:port")
    parser.add_argument("--grpc", default="localhost:8001", help="gRPC host:port")
    args = parser.parse_args()
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.ones((1, 16), dtype=np.int32)
    over_http(args.http, a, b)
    over_grpc(args.grpc, a, b)


if __name__ == "__main__":
    main()
