"""What tracing costs per request: ``engine.infer`` with tracing off vs on, in one process and one run.

    python benchmarks/tracing_overhead.py [--iterations 4000]

Three engines on the same ONNX identity model (16 x FP32, batch 1), measured in alternating blocks:
tracing off (the default: one attribute test per request), ``trace_mode=triton`` at Triton's default
``rate=1000`` (every request samples, one in 1000 is written), and ``rate=1`` (every request traced
into the JSON file). Prints p50 per engine and the difference to "off" in µs and as a ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine_overhead import make_repository, measure_alternating, pct  # noqa: E402

from tritonlite import InferenceEngine  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=4000)
    args = ap.parse_args()
    x = np.ones((1, 16), np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "models"
        repo.mkdir()
        make_repository(repo)
        configs = {
            "off": None,
            "triton rate=1000": ["level=TIMESTAMPS", "rate=1000", f"triton,file={tmp}/r1000.json"],
            "triton rate=1": ["level=TIMESTAMPS", "rate=1", f"triton,file={tmp}/r1.json"],
        }
        engines = {k: InferenceEngine(repo, metrics=False, trace_config=c) for k, c in configs.items()}
        try:
            timed = measure_alternating({k: (lambda e=e: e.infer("identity_onnx", {"INPUT0": x})) for k, e in engines.items()},
                                        args.iterations)
        finally:
            for e in engines.values():
                e.close()
    base = pct(timed["off"], 0.5)
    print(f"tracing overhead, {args.iterations} sequential requests per engine, onnxruntime identity 16 x FP32")
    for k, samples in timed.items():
        p50, p99 = pct(samples, 0.5), pct(samples, 0.99)
        print(f"{k:<18} p50 {p50:7.1f} µs  p99 {p99:7.1f} µs | vs off {p50 - base:+6.2f} µs  ratio {p50 / base:5.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
