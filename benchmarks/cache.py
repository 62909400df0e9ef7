"""What a response-cache hit costs next to a real ONNX model call, in one process and one run.

    python benchmarks/cache.py [--iterations 2000] [--width 256 --hidden 1024]

Builds an ONNX MLP (Gemm+ReLU, ``width``-``hidden``-``hidden``-``width``, batch 1, one intra-op thread)
twice in one repository: ``mlp`` (no cache) and ``mlp_cached`` (``response_cache { enable: true }``), on an
engine with ``--cache-config local,size=64 MiB``. Times, sequentially and in alternating blocks:

- raw ``onnxruntime.InferenceSession.run`` on the same file (the model call itself);
- ``engine.infer`` on ``mlp`` (the model call through the engine);
- ``engine.infer`` on ``mlp_cached`` with inputs already in the cache (the hit path: validation, key hash,
  lookup, output copy, statistics, future).

Prints p50 in µs and the ratios hit / engine call and hit / raw call. Target (issue 11): a hit costs at
most 20% of an ONNX model call.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tritonlite import InferenceEngine  # noqa: E402


def _build_mlp():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_batching", ROOT / "benchmarks" / "batching.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod.build_mlp


def make_repository(root: Path, dims: list[int]) -> None:
    build_mlp = _build_mlp()
    for name, extra in (("mlp", ""), ("mlp_cached", "response_cache { enable: true }")):
        build_mlp(root / name / "1" / "model.onnx", dims)
        (root / name / "config.pbtxt").write_text(textwrap.dedent(f"""
            platform: "onnxruntime_onnx"
            max_batch_size: 8
            input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ {dims[0]} ] }} ]
            output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ {dims[-1]} ] }} ]
            instance_group [ {{ kind: KIND_CPU count: 1 }} ]
            parameters {{ key: "intra_op_thread_count" value: {{ string_value: "1" }} }}
            parameters {{ key: "inter_op_thread_count" value: {{ string_value: "1" }} }}
            {extra}
        """))


def _time(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1000.0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=1024)
    args = parser.parse_args()
    import onnxruntime as ort

    dims = [args.width, args.hidden, args.hidden, args.width]
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "models"
        make_repository(repo, dims)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(repo / "mlp" / "1" / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).standard_normal((1, args.width), dtype=np.float32)
        with InferenceEngine(repo, cache_config={"local": {"size": 64 << 20}}, metrics=False) as engine:
            want = session.run(["OUTPUT0"], {"INPUT0": x})[0]
            np.testing.assert_allclose(engine.infer("mlp", {"INPUT0": x}).outputs["OUTPUT0"], want, rtol=1e-5)
            engine.infer("mlp_cached", {"INPUT0": x})  # the miss that fills the cache
            np.testing.assert_allclose(engine.infer("mlp_cached", {"INPUT0": x}).outputs["OUTPUT0"], want, rtol=1e-5)
            runs = {
                "raw onnxruntime run": lambda: session.run(["OUTPUT0"], {"INPUT0": x}),
                "engine.infer (model runs)": lambda: engine.infer("mlp", {"INPUT0": x}),
                "engine.infer (cache hit)": lambda: engine.infer("mlp_cached", {"INPUT0": x}),
            }
            samples: dict[str, list[float]] = {k: [] for k in runs}
            block = max(1, args.iterations // 10)
            for _ in range(10):  # alternating blocks share the machine's noise
                for name, fn in runs.items():
                    samples[name] += _time(fn, block)
            stats = engine.model_statistics("mlp_cached")["model_stats"][0]
            hits = stats["inference_stats"]["cache_hit"]
        p50 = {k: statistics.median(v) for k, v in samples.items()}
    print(f"MLP {'-'.join(map(str, dims))} batch 1, {args.iterations} requests each, p50:")
    for name, value in p50.items():
        print(f"  {name:28s} {value:9.1f} us")
    hit, call, raw = p50["engine.infer (cache hit)"], p50["engine.infer (model runs)"], p50["raw onnxruntime run"]
    print(f"  cache lookup+copy (stats)    {hits['ns'] / max(1, hits['count']) / 1000:9.1f} us mean over {hits['count']} hits")
    print(f"hit / engine call = {hit / call:.3f}   hit / raw call = {hit / raw:.3f}   (target <= 0.20)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
