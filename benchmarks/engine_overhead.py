"""Per-request overhead of ``engine.infer`` over the raw backend call, in one process and one run.

    python benchmarks/engine_overhead.py [--iterations 5000]

Measures, sequentially at batch 1: raw ``onnxruntime.InferenceSession.run`` vs ``engine.infer`` on the
same ONNX model (same session options), and a Python-model identity called directly vs through the
engine. Prints p50/p99 in µs, the ratio and the overhead in µs.
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
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tritonlite import InferenceEngine  # noqa: E402


def _builders():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_onnx_models", ROOT / "examples" / "build_onnx_models.py")
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def make_repository(root: Path) -> None:
    _builders().identity(root / "identity_onnx" / "1" / "model.onnx", ["batch", 16])
    (root / "identity_onnx" / "config.pbtxt").write_text(textwrap.dedent("""
        platform: "onnxruntime_onnx"
        max_batch_size: 8
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        instance_group [ { kind: KIND_CPU count: 1 } ]
        parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
        parameters { key: "inter_op_thread_count" value: { string_value: "1" } }
    """))
    (root / "identity_py" / "1").mkdir(parents=True)
    (root / "identity_py" / "config.pbtxt").write_text(textwrap.dedent("""
        backend: "python"
        max_batch_size: 8
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        instance_group [ { kind: KIND_CPU count: 1 } ]
    """))
    (root / "identity_py" / "1" / "model.py").write_text(textwrap.dedent("""
        import triton_python_backend_utils as pb_utils

        class TritonPythonModel:
            def execute(self, requests):
                return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
                        for r in requests]
    """))


def measure(fn: Callable[[], object], iterations: int) -> list[float]:
    for _ in range(min(500, iterations // 5)):
        fn()
    out = []
    clock = time.perf_counter_ns
    for _ in range(iterations):
        t0 = clock()
        fn()
        out.append((clock() - t0) / 1000.0)
    return out


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def report(name: str, raw: list[float], engine: list[float]) -> dict[str, float]:
    r50, r99, e50, e99 = pct(raw, 0.5), pct(raw, 0.99), pct(engine, 0.5), pct(engine, 0.99)
    row = {"raw_p50": r50, "raw_p99": r99, "engine_p50": e50, "engine_p99": e99, "ratio_p50": e50 / r50, "overhead_p50_us": e50 - r50}
    print(
        f"{name:<22} raw p50 {r50:8.1f} µs  p99 {r99:8.1f} µs | engine p50 {e50:8.1f} µs  p99 {e99:8.1f} µs | "
        f"ratio {e50 / r50:5.2f}x  overhead p50 {e50 - r50:6.1f} µs"
    )
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=5000)
    args = ap.parse_args()
    import onnxruntime as ort

    x = np.random.default_rng(0).random((1, 16), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        make_repository(repo)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(repo / "identity_onnx" / "1" / "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"])
        feeds = {"INPUT0": x}
        with InferenceEngine(repo) as engine:
            inputs = {"INPUT0": x}
            assert np.array_equal(engine.infer("identity_onnx", inputs).as_numpy("OUTPUT0"), sess.run(None, feeds)[0])
            print(f"tritonlite engine overhead, {args.iterations} sequential requests, batch 1, 16 x FP32")
            raw = measure(lambda: sess.run(None, feeds), args.iterations)
            eng = measure(lambda: engine.infer("identity_onnx", inputs), args.iterations)
            report("onnxruntime identity", raw, eng)

            model_py = _load_model_py(repo / "identity_py" / "1" / "model.py")
            raw_py = measure(lambda: model_py(x), args.iterations)
            eng_py = measure(lambda: engine.infer("identity_py", inputs), args.iterations)
            report("python identity", raw_py, eng_py)
            print("raw python = the model's execute() called directly with one pb_utils request")
    return 0


def _load_model_py(path: Path) -> Callable[[np.ndarray], object]:
    """The identity model.py's execute called directly, the way a hand-written loop would."""
    from tritonlite.backends.python import pb_utils

    sys.modules.setdefault("triton_python_backend_utils", pb_utils)
    spec = importlib.util.spec_from_file_location("bench_identity_model", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    model = mod.TritonPythonModel()

    def call(x: np.ndarray) -> object:
        req = pb_utils.InferenceRequest(model_name="identity_py", inputs=[pb_utils.Tensor("INPUT0", x)], requested_output_names=["OUTPUT0"])
        return model.execute([req])

    return call


if __name__ == "__main__":
    sys.exit(main())
