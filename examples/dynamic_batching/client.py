"""Dynamic batching: eight callers at once, one execution of the model.

    python examples/dynamic_batching/client.py
    tritonlite serve --model-repository examples/dynamic_batching/model_repository   # same model over HTTP/gRPC

Eight threads call ``engine.infer`` at the same moment. The model's ``dynamic_batching`` block lets the
scheduler wait (up to ``max_queue_delay_microseconds``) and hand the waiting requests to the single
instance together, so the statistics show fewer executions than inferences; ``batch_stats`` says
which batch sizes ran. Each caller still gets its own answer.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tritonlite import InferenceEngine

REPO = Path(__file__).resolve().parent / "model_repository"
CALLERS = 8

with InferenceEngine(REPO) as engine:
    start = threading.Barrier(CALLERS)

    def call(i: int) -> tuple[list[float], int]:
        x = np.array([[i, i + 0.5]], dtype=np.float32)
        start.wait()  # every caller sends at the same moment
        result = engine.infer("doubler", {"INPUT": x})
        return result.as_numpy("OUTPUT")[0].tolist(), int(result.as_numpy("BATCHED_WITH")[0, 0])

    with ThreadPoolExecutor(CALLERS) as pool:
        answers = list(pool.map(call, range(CALLERS)))
    for i, (out, batched_with) in enumerate(answers):
        print(f"caller {i}: {out} (executed in a batch of {batched_with} requests)")

    stats = engine.model_statistics("doubler")["model_stats"][0]
    sizes = {s["batch_size"]: s["compute_infer"]["count"] for s in stats["batch_stats"]}
    print(f"inference_count: {stats['inference_count']}, execution_count: {stats['execution_count']}")
    print(f"batch sizes run: {dict(sorted(sizes.items()))}")
