"""Custom metrics: a model's own counter, gauge and histogram, scraped next to Triton's nv_* metrics.

    python examples/custom_metrics/client.py
    tritonlite serve --model-repository examples/custom_metrics/model_repository   # curl localhost:8002/metrics

The client sends three texts, then reads the Prometheus text twice: from ``engine.metrics()`` and
over HTTP from the metrics server (what Prometheus scrapes), and prints the model's series.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import numpy as np

from tritonlite import InferenceEngine
from tritonlite.metrics import MetricsServer

REPO = Path(__file__).resolve().parent / "model_repository"
TEXTS = ["hello", "the quick brown fox", "one two three four five six seven"]


def series(text: str, *prefixes: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(prefixes)]


with InferenceEngine(REPO) as engine:
    for t in TEXTS:
        n = engine.infer("word_count", {"TEXT": np.array([t.encode()], dtype=object)}).as_numpy("WORDS")[0]
        print(f"{t!r}: {n} words")
    in_process = engine.metrics()
    with MetricsServer(engine, port=0) as server:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as reply:
            scraped = reply.read().decode()
    mine = series(scraped, "word_count_", "# TYPE word_count_")
    assert mine == series(in_process, "word_count_", "# TYPE word_count_")  # one registry, two ways to read it
    print("\n".join(mine))
    print("\n".join(series(scraped, "nv_inference_request_success{")))
