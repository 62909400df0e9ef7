"""Health-endpoint latency while a slow model is offered 10x its capacity (issue 13: ≤ 100 ms).

    .venv/bin/python benchmarks/overload_health.py --rounds 3

One engine, HTTP server on 127.0.0.1; model `slow` (one instance, 50 ms a request, max_queue_size 4)
gets 40 requests in ~0.2 s per round while a prober hits /v2/health/live and /v2/health/ready. The
baseline is the same probing with the model idle; results are printed as milliseconds and ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from model_repos import identity_py_config, write_model  # noqa: E402

from tritonlite import InferenceEngine  # noqa: E402
from tritonlite.http import HttpServer  # noqa: E402

SLOW_PY = """
import time
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            time.sleep(0.05)
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())]))
        return out
"""


def probe(url: str, seconds: float) -> list[float]:
    host, port = url.split(":")
    out: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for path in ("/v2/health/live", "/v2/health/ready"):
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            t0 = time.perf_counter()
            conn.request("GET", path)
            assert conn.getresponse().status == 200
            out.append((time.perf_counter() - t0) * 1000)
            conn.close()
        time.sleep(0.005)
    return out


def offer(url: str, n: int) -> dict[int, int]:
    host, port = url.split(":")
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def one(i: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, 1], "datatype": "INT32", "data": [i]}]})
        conn.request("POST", "/v2/models/slow/infer", body=body)
        status = conn.getresponse().status
        conn.close()
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for i, t in enumerate(threads):
        t.start()
        if i % 8 == 7:
            time.sleep(0.04)
    for t in threads:
        t.join(60)
    return statuses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_model(root, "slow", identity_py_config("slow", dims="[ 1 ]", dtype="TYPE_INT32", max_batch=1,
                                                     extra="instance_group [ { kind: KIND_CPU count: 1 } ] "
                                                           "dynamic_batching { default_queue_policy { max_queue_size: 4 } }"),
                    {"1/model.py": SLOW_PY})
        with InferenceEngine(root) as engine, HttpServer(engine) as server:
            url = f"127.0.0.1:{server.port}"
            idle = probe(url, 1.0)
            loaded: list[float] = []
            totals: dict[int, int] = {}
            for _ in range(args.rounds):
                result: list[list[float]] = []
                prober = threading.Thread(target=lambda: result.append(probe(url, 0.6)))
                prober.start()
                for k, v in offer(url, 40).items():
                    totals[k] = totals.get(k, 0) + v
                prober.join()
                loaded += result[0]
    q = lambda xs, p: statistics.quantiles(xs, n=100)[p - 1]  # noqa: E731
    print(f"answers under overload: {totals}")
    print(f"idle:       p50 {statistics.median(idle):.2f} ms  p99 {q(idle, 99):.2f} ms  max {max(idle):.2f} ms  ({len(idle)} probes)")
    print(f"overloaded: p50 {statistics.median(loaded):.2f} ms  p99 {q(loaded, 99):.2f} ms  max {max(loaded):.2f} ms  ({len(loaded)} probes)")
    print(f"ratio overloaded/idle: p50 {statistics.median(loaded) / statistics.median(idle):.2f}x  "
          f"p99 {q(loaded, 99) / q(idle, 99):.2f}x; max vs the 100 ms target: {max(loaded) / 100:.2f}")


if __name__ == "__main__":
    main()
