"""Per-request overhead of ``engine.infer`` over the raw backend call, in one process and one run.

    python benchmarks/engine_overhead.py [--iterations 5000] [--metrics on|off|both] [--metrics-config KEY=VALUE]
    python benchmarks/engine_overhead.py --backends   # + pytorch, openvino, fil (tensorrt where it can run)

Measures, sequentially at batch 1: raw ``onnxruntime.InferenceSession.run`` vs ``engine.infer`` on the
same ONNX model (same session options), and a Python-model identity called directly vs through the
engine. Prints p50/p99 in µs, the ratio and the overhead in µs.

``--metrics both`` (the default) runs two engines in the same process, one with Prometheus metrics off
and one with them on (``--metrics-config`` options apply to it), measured in alternating blocks, and
prints what metrics add per request.
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
from typing import Any, Callable

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


def measure_alternating(fns: dict[str, Callable[[], object]], iterations: int, blocks: int = 10) -> dict[str, list[float]]:
    """``measure`` for several callables in alternating blocks, so drift (clock, cache, GC) hits them alike;
    the order flips every block, so neither is always the one running first."""
    for fn in fns.values():
        for _ in range(min(500, iterations // 5)):
            fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    clock = time.perf_counter_ns
    per_block = max(1, iterations // blocks)
    items = list(fns.items())
    for block in range(blocks):
        for name, fn in items if block % 2 == 0 else items[::-1]:
            samples = out[name]
            for _ in range(per_block):
                t0 = clock()
                fn()
                samples.append((clock() - t0) / 1000.0)
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
    ap.add_argument("--backends", action="store_true", help="also measure the pytorch, openvino, fil and tensorrt backends")
    ap.add_argument("--metrics", choices=("on", "off", "both"), default="both",
                    help="engine with Prometheus metrics on, off, or both in this run (default both)")
    ap.add_argument("--metrics-config", action="append", default=[], metavar="KEY=VALUE",
                    help="metrics_config setting of the metrics-on engine, e.g. summary_latencies=true (repeatable)")
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
        modes = {"on": ["on"], "off": ["off"], "both": ["off", "on"]}[args.metrics]
        engines = {
            m: InferenceEngine(repo, metrics=m == "on", metrics_config=args.metrics_config if m == "on" else None) for m in modes
        }
        try:
            inputs = {"INPUT0": x}
            for engine in engines.values():
                assert np.array_equal(engine.infer("identity_onnx", inputs).as_numpy("OUTPUT0"), sess.run(None, feeds)[0])
            print(f"tritonlite engine overhead, {args.iterations} sequential requests, batch 1, 16 x FP32")
            if args.metrics_config:
                print(f"metrics_config of the metrics-on engine: {args.metrics_config}")
            model_py = _load_model_py(repo / "identity_py" / "1" / "model.py")
            rows: dict[tuple[str, str], dict[str, float]] = {}
            for model, label, raw_fn in (("identity_onnx", "onnxruntime identity", lambda: sess.run(None, feeds)),
                                         ("identity_py", "python identity", lambda: model_py(x))):
                raw = measure(raw_fn, args.iterations)
                timed = measure_alternating(
                    {m: (lambda e=e, model=model: e.infer(model, inputs)) for m, e in engines.items()}, args.iterations
                )
                for m in modes:
                    rows[(model, m)] = report(f"{label} [metrics {m}]" if len(modes) > 1 else label, raw, timed[m])
            print("raw python = the model's execute() called directly with one pb_utils request")
            if len(modes) == 2:
                for model, label in (("identity_onnx", "onnxruntime identity"), ("identity_py", "python identity")):
                    off, on = rows[(model, "off")], rows[(model, "on")]
                    print(f"metrics cost, {label:<20}: p50 {on['engine_p50'] - off['engine_p50']:+5.2f} µs per request "
                          f"(engine p50 {off['engine_p50']:.1f} -> {on['engine_p50']:.1f} µs)")
        finally:
            for engine in engines.values():
                engine.close()
    if args.backends:
        backend_rows(args.iterations)
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


# ---- --backends: one row per framework backend, engine.infer vs the raw framework call ---------------
BACKEND_CONFIGS = {
    "torchscript": """
        platform: "pytorch_libtorch"
        max_batch_size: 8
        input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        instance_group [ { kind: KIND_CPU count: 1 } ]
        parameters { key: "INTRA_OP_THREAD_COUNT" value: { string_value: "1" } }
    """,
    "torch_export": """
        platform: "torch_aoti"
        max_batch_size: 8
        input [ { name: "x" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        instance_group [ { kind: KIND_CPU count: 1 } ]
    """,
    "openvino": """
        backend: "openvino"
        max_batch_size: 8
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        instance_group [ { kind: KIND_CPU count: 1 } ]
        parameters { key: "NUM_STREAMS" value: { string_value: "1" } }
        parameters { key: "INFERENCE_NUM_THREADS" value: { string_value: "1" } }
        parameters { key: "PERFORMANCE_HINT" value: { string_value: "LATENCY" } }
    """,
    "fil": """
        backend: "fil"
        max_batch_size: 8
        input [ { name: "input__0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "output__0" data_type: TYPE_FP32 dims: [ 2 ] } ]
        instance_group [ { kind: KIND_CPU count: 1 } ]
        parameters { key: "model_type" value: { string_value: "xgboost_json" } }
        parameters { key: "output_class" value: { string_value: "true" } }
        parameters { key: "predict_proba" value: { string_value: "true" } }
    """,
}


def _torch_raw(root: Path, x: np.ndarray) -> dict[str, tuple[str, str, Callable[[], object]]]:
    """TorchScript and torch.export models of one 16x16 linear layer + ReLU; name -> (input, output, raw call)."""
    import torch

    torch.manual_seed(0)
    layer = torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU()).eval()
    (root / "torchscript" / "1").mkdir(parents=True)
    torch.jit.trace(layer, torch.ones(1, 16)).save(str(root / "torchscript" / "1" / "model.pt"))
    batch = torch.export.Dim("batch", min=1, max=8)
    ep = torch.export.export(layer, (torch.ones(2, 16),), dynamic_shapes={"input": {0: batch}})
    (root / "torch_export" / "1").mkdir(parents=True)
    torch.export.save(ep, str(root / "torch_export" / "1" / "model.pt2"))
    # the raw calls: what a hand-written loop does with the same files and torch's settings
    torch.set_num_threads(1)
    script = torch.jit.load(str(root / "torchscript" / "1" / "model.pt"))
    exported = torch.export.load(str(root / "torch_export" / "1" / "model.pt2")).module()
    BACKEND_CONFIGS["torch_export"] = BACKEND_CONFIGS["torch_export"].replace('name: "x"', f'name: "{_first_arg(exported)}"')

    def run(module: Any) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode():
                return module(torch.from_numpy(x)).numpy()
        return call

    return {"torchscript": ("INPUT__0", "OUTPUT__0", run(script)), "torch_export": (_first_arg(exported), "OUTPUT__0", run(exported))}


def _first_arg(module: Any) -> str:
    import inspect

    return next(iter(inspect.signature(module.forward).parameters))


def _openvino_raw(root: Path, x: np.ndarray) -> dict[str, tuple[str, str, Callable[[], object]]]:
    import openvino as ov
    from openvino import opset13 as ops

    w = np.random.default_rng(0).standard_normal((16, 16)).astype(np.float32)
    inp = ops.parameter([-1, 16], np.float32, name="INPUT0")
    out = ops.relu(ops.matmul(inp, ops.constant(w), False, False))
    out.output(0).get_tensor().set_names({"OUTPUT0"})
    (root / "openvino" / "1").mkdir(parents=True)
    ov.save_model(ov.Model([out], [inp]), str(root / "openvino" / "1" / "model.xml"), compress_to_fp16=False)
    props = {"INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": "1", "PERFORMANCE_HINT": "LATENCY"}
    request = ov.Core().compile_model(str(root / "openvino" / "1" / "model.xml"), "CPU", props).create_infer_request()
    return {"openvino": ("INPUT0", "OUTPUT0", lambda: request.infer({0: x}, share_inputs=True)[0])}


def _fil_raw(root: Path, x: np.ndarray) -> dict[str, tuple[str, str, Callable[[], object]]]:
    import treelite
    import treelite.gtil
    import xgboost as xgb

    rng = np.random.default_rng(0)
    data = rng.random((500, 16), dtype=np.float32)
    label = (data[:, 0] + data[:, 1] > 1).astype(np.int32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "nthread": 1}, xgb.DMatrix(data, label=label), 20)
    (root / "fil" / "1").mkdir(parents=True)
    booster.save_model(str(root / "fil" / "1" / "xgboost.json"))
    model = treelite.frontend.load_xgboost_model(str(root / "fil" / "1" / "xgboost.json"))
    return {"fil": ("input__0", "output__0", lambda: treelite.gtil.predict(model, x, nthread=1))}


def backend_rows(iterations: int) -> list[dict[str, float]]:
    """engine.infer vs the raw framework call on the same model file, batch 1, one instance, per backend."""
    x = np.random.default_rng(1).random((1, 16), dtype=np.float32)
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        raw: dict[str, tuple[str, str, Callable[[], object]]] = {}
        for name, build in (("pytorch", _torch_raw), ("openvino", _openvino_raw), ("fil (xgboost, 20 trees)", _fil_raw)):
            try:
                raw.update(build(root, x))
            except ImportError as exc:
                print(f"{name:<22} skipped: {exc.name} is not installed")
        for model in raw:
            (root / model / "config.pbtxt").write_text(textwrap.dedent(BACKEND_CONFIGS[model]))
        print("tensorrt               skipped: needs TensorRT and an NVIDIA GPU (see tests/backends/test_tensorrt_fake.py)")
        if not raw:
            return rows
        with InferenceEngine(root) as engine:
            print(f"backends, {iterations} sequential requests, batch 1, 16 features, one instance, one thread")
            for model, (inp, out, call) in raw.items():
                inputs = {inp: x}
                np.testing.assert_allclose(np.asarray(engine.infer(model, inputs).as_numpy(out)).reshape(-1)[-1:],
                                           np.asarray(call()).reshape(-1)[-1:], rtol=1e-5)
                both = measure_alternating({"raw": call, "engine": lambda: engine.infer(model, inputs)}, iterations, blocks=20)
                r, e = both["raw"], both["engine"]
                rows.append({"backend": model, **report(model, r, e)})  # type: ignore[dict-item]
    return rows


if __name__ == "__main__":
    sys.exit(main())
