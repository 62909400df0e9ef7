"""Response cache and warmup in a few lines: the second identical request never reaches the model.

    python examples/response_cache/client.py            # in-process, local cache
    tritonlite serve --model-repository examples/response_cache/model_repository --cache-config local,size=1048576
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tritonlite import InferenceEngine

REPO = Path(__file__).resolve().parent / "model_repository"

with InferenceEngine(REPO, cache_config={"local": {"size": 1 << 20}}) as engine:
    x = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    for attempt in ("first", "second"):
        start = time.perf_counter()
        y = engine.infer("slow_square", {"X": x}).as_numpy("Y")
        print(f"{attempt}: {y.tolist()} in {(time.perf_counter() - start) * 1000:.1f} ms")
    stats = engine.model_statistics("slow_square")["model_stats"][0]
    s = stats["inference_stats"]
    print(f"executions: {stats['execution_count']} (warmup is not counted), "
          f"cache hits: {s['cache_hit']['count']}, misses: {s['cache_miss']['count']}")
