"""Sequence batching with implicit state: two interleaved sequences, each with its own running total.

    python examples/sequence_state/client.py
    tritonlite serve --model-repository examples/sequence_state/model_repository   # tritonclient: sequence_id=...

Requests of one sequence carry the same ``sequence_id`` (Triton's correlation id), the first one
``sequence_start=True`` and the last one ``sequence_end=True``. The server keeps each sequence's
state between its requests, so the two sequences below never see each other's totals although
their requests alternate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tritonlite import InferenceEngine, InvalidArgumentError

REPO = Path(__file__).resolve().parent / "model_repository"
SEQUENCES = {1001: [1, 2, 3, 4], 1002: [10, 20, 30]}

with InferenceEngine(REPO) as engine:
    steps = max(len(v) for v in SEQUENCES.values())
    for step in range(steps):
        for sequence_id, values in SEQUENCES.items():
            if step >= len(values):
                continue
            result = engine.infer(
                "accumulator",
                {"INPUT": np.array([[values[step]]], dtype=np.int32)},
                sequence_id=sequence_id,
                sequence_start=step == 0,
                sequence_end=step == len(values) - 1,
            )
            print(f"sequence {sequence_id} adds {values[step]:>2}: total {int(result.as_numpy('TOTAL')[0, 0])}")
    stats = engine.model_statistics("accumulator")["model_stats"][0]
    print(f"inference_count: {stats['inference_count']}")
    try:  # sequence 1001 has ended: a request without sequence_start is refused (Triton's message)
        engine.infer("accumulator", {"INPUT": np.array([[5]], dtype=np.int32)}, sequence_id=1001)
    except InvalidArgumentError as exc:
        print(f"rejected: {exc}")
