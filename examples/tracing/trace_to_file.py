"""Trace every request of the example repository into Triton's JSON trace file, then summarise it.

    python examples/tracing/trace_to_file.py [TRACE_FILE]

The same settings as ``tritonlite serve --trace-config level=TIMESTAMPS --trace-config rate=1
--trace-config triton,file=TRACE_FILE``. Prints, per traced request, the model and the time from each
timestamp to the next (queue, compute input, infer, output) in microseconds.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from tritonlite import InferenceEngine

REPO = Path(__file__).resolve().parents[1] / "model_repository"


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "trace.json"
    config = ["level=TIMESTAMPS", "rate=1", f"triton,file={path}"]
    with InferenceEngine(REPO, trace_config=config, metrics=False) as engine:
        x = np.arange(4, dtype=np.float32)
        engine.infer("add_sub", {"INPUT0": x, "INPUT1": np.ones(4, np.float32)}, request_id="first")
        engine.infer("scale", {"INPUT": np.ones((1, 2), np.float32)}, model_version=2, request_id="second")
    entries = json.loads(path.read_text())
    heads = {e["id"]: e for e in entries if "model_name" in e}
    stamps: dict[int, list[tuple[str, int]]] = {}
    for e in entries:
        for s in e.get("timestamps", []):
            stamps.setdefault(e["id"], []).append((s["name"], s["ns"]))
    print(f"trace file: {path} ({len(entries)} entries)")
    for tid, head in sorted(heads.items()):
        points = stamps[tid]
        steps = " ".join(f"{a}->{b} {(tb - ta) / 1000:.1f}us" for (a, ta), (b, tb) in zip(points, points[1:]))
        print(f"{head['model_name']} v{head['model_version']} request {head.get('request_id', '')}: {steps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
