"""An ensemble: preprocess (Python) -> classifier (ONNX Runtime) -> postprocess (Python), called as one model.

    python examples/ensemble/client.py
    tritonlite serve --model-repository examples/ensemble/model_repository   # then call "sentiment"

The client sends text to ``sentiment`` and gets a label back; the word counts and probabilities
between the steps never leave the server. Each step is an ordinary model with its own scheduler
and statistics (here the batch of four sentences runs once through each step).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tritonlite import InferenceEngine

REPO = Path(__file__).resolve().parent / "model_repository"
TEXTS = ["A great film with good acting.", "An awful plot.", "Good music, bad sound, great cast.", "Bad, bad, bad."]

with InferenceEngine(REPO) as engine:
    text = np.array([[t.encode()] for t in TEXTS], dtype=object)  # [batch, 1] BYTES
    result = engine.infer("sentiment", {"TEXT": text})
    for t, label, score in zip(TEXTS, result.as_numpy("LABEL")[:, 0], result.as_numpy("SCORE")[:, 0]):
        print(f"{t!r}: {label.decode()} ({score:.3f})")
    for name in ("sentiment", "preprocess", "classifier", "postprocess"):
        stats = engine.model_statistics(name)["model_stats"][0]
        print(f"{name}: inference_count {stats['inference_count']}, execution_count {stats['execution_count']}")
