"""BLS (Business Logic Scripting): a Python model that calls other models, as Triton's python_backend does.

    python examples/bls/client.py
    tritonlite serve --model-repository examples/bls/model_repository   # then call "hypotenuse"

``hypotenuse`` runs ``sqrt(square(A) + square(B))`` by calling the ``square`` model twice (with
``async_exec``, concurrently) and the ``add`` model once (with ``exec``). In tritonlite these calls
stay in the process: no IPC, same schedulers and statistics as a client's request. An error in a
called model comes back to the BLS model as an error response, which it turns into its own error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tritonlite import InferenceEngine, TritonLiteError

REPO = Path(__file__).resolve().parent / "model_repository"

with InferenceEngine(REPO) as engine:
    a = np.array([3, 5, 8], dtype=np.float32)
    b = np.array([4, 12, 15], dtype=np.float32)
    c = engine.infer("hypotenuse", {"A": a, "B": b}).as_numpy("C")
    print(f"hypotenuse({a.tolist()}, {b.tolist()}) = {c.tolist()}")
    for name in ("hypotenuse", "square", "add"):
        print(f"{name}: inference_count {engine.model_statistics(name)['model_stats'][0]['inference_count']}")
    try:
        engine.infer("hypotenuse", {"A": a, "B": b[:2]})
    except TritonLiteError as exc:
        print(f"error: {type(exc).__name__}: {exc}")
