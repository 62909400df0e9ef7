"""Drive load through HTTP, then read tritonlite's Prometheus endpoint the way Prometheus scrapes it.

    tritonlite serve --model-repository examples/prometheus/model_repository \
        --metrics-config summary_latencies=true                 # HTTP :8000, metrics :8002
    python examples/prometheus/client.py [--http localhost:8000] [--metrics localhost:8002] [--requests 64]

Then point Prometheus at it with ``examples/prometheus/prometheus.yml`` and import
``examples/prometheus/grafana_dashboard.json`` into Grafana (it asks for the Prometheus data source).
"""

from __future__ import annotations

import argparse
import re
import urllib.request

import numpy as np
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

MODEL = "double"
SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)')
LABEL = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"')


def drive(url: str, requests: int, concurrency: int = 8) -> tuple[int, int]:
    """``requests`` good requests, ``concurrency`` in flight at a time, then two bad ones: (ok, failed)."""
    client = httpclient.InferenceServerClient(url, concurrency=concurrency)
    ok = failed = 0
    pending = []
    for i in range(requests):
        x = httpclient.InferInput("X", [1, 4], "FP32")
        x.set_data_from_numpy(np.full((1, 4), i, dtype=np.float32))
        pending.append((i, client.async_infer(MODEL, [x])))
    for i, call in pending:
        y = call.get_result().as_numpy("Y")
        ok += bool((y == 2 * i).all())
    for _ in range(2):  # the wrong data type: refused by the server, counted as failures
        bad = httpclient.InferInput("X", [1, 4], "INT32")
        bad.set_data_from_numpy(np.zeros((1, 4), dtype=np.int32))
        try:
            client.infer(MODEL, [bad])
        except InferenceServerException:
            failed += 1
    client.close()
    return ok, failed


def scrape(url: str) -> dict[str, float]:
    """Every ``nv_*`` sample of the Prometheus text format, as ``'name{label="v",...}' -> value`` with the
    labels sorted (the names as Prometheus stores them: Triton's counters have no ``_total``)."""
    with urllib.request.urlopen(f"http://{url}/metrics", timeout=10) as resp:
        text = resp.read().decode("utf-8")
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match["name"].startswith("nv_"):
            labels = ",".join(sorted(LABEL.findall(match["labels"] or "")))
            samples[f"{match['name']}{{{labels}}}"] = float(match["value"])
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", default="localhost:8000")
    parser.add_argument("--metrics", default="localhost:8002")
    parser.add_argument("--requests", type=int, default=64)
    args = parser.parse_args()

    ok, failed = drive(args.http, args.requests)
    print(f"sent {args.requests} requests: {ok} correct, {failed} refused")
    samples = scrape(args.metrics)
    model = f'model="{MODEL}",version="1"'
    for name in ("nv_inference_request_success", "nv_inference_count"):
        print(f"{name}{{{model}}} {samples[f'{name}{{{model}}}']:g}")
    failures = {k: v for k, v in samples.items() if k.startswith("nv_inference_request_failure{") and v}
    for key, value in sorted(failures.items()):
        print(f"{key} {value:g}")
    executions = samples[f"nv_inference_exec_count{{{model}}}"]
    print(f"nv_inference_exec_count between 1 and {args.requests}: {1 <= executions <= args.requests} "
          f"(mean batch {samples[f'nv_inference_count{{{model}}}'] / executions:.1f})")
    total_us = samples[f"nv_inference_request_duration_us{{{model}}}"]
    print(f"mean request latency > 0 us: {total_us / args.requests > 0}")
    p50 = [v for k, v in samples.items() if k.startswith("nv_inference_request_summary_us{") and MODEL in k and 'quantile="0.5"' in k]
    print(f"p50 from nv_inference_request_summary_us: {'present' if p50 and p50[0] > 0 else 'absent'}")
    print(f"nv_cpu_utilization present: {any(k.startswith('nv_cpu_utilization') for k in samples)}")


if __name__ == "__main__":
    main()
