"""Throughput of many concurrent callers with and without the dynamic batcher, in one process and one run.

    python benchmarks/batching.py [--threads 32] [--seconds 3] [--width 1024] [--hidden 4096] [--layers 1]

The model is a small ONNX MLP, ``[batch, width] -> hidden (x layers) -> width`` with ReLU between
(8.4 M parameters by default), one instance, one onnxruntime thread. Two copies are loaded:
``mlp_plain`` (default scheduler: each request runs alone) and ``mlp_batched``
(``dynamic_batching {}``, ``max_batch_size: 32``, no queue delay). ``--threads`` closed-loop
callers each call ``engine.infer`` with one row for ``--seconds`` on one model, then on the other.

Prints requests/s for each, the ratio, the mean executed batch size (``inference_count /
execution_count`` from the statistics API) and, as the ceiling, raw ``InferenceSession.run`` time per
row at batch 1 and at that mean batch size.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tritonlite import InferenceEngine  # noqa: E402


def build_mlp(path: Path, dims: list[int]) -> int:
    """Gemm(+ReLU) layers through ``dims`` with fixed random weights; returns the parameter count."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, current = [], [], "INPUT0"
    for i, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
        weights += [
            numpy_helper.from_array(rng.standard_normal((n_in, n_out), dtype=np.float32) * 0.05, f"W{i}"),
            numpy_helper.from_array(np.zeros(n_out, np.float32), f"B{i}"),
        ]
        last = i == len(dims) - 2
        nodes.append(helper.make_node("Gemm", [current, f"W{i}", f"B{i}"], ["OUTPUT0" if last else f"G{i}"]))
        if not last:
            nodes.append(helper.make_node("Relu", [f"G{i}"], [f"R{i}"]))
            current = f"R{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("INPUT0", TensorProto.FLOAT, ["batch", dims[0]])],
        [helper.make_tensor_value_info("OUTPUT0", TensorProto.FLOAT, ["batch", dims[-1]])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tritonlite")
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


def make_repository(root: Path, dims: list[int], instances: int = 1, threads: int = 1) -> int:
    params = 0
    for name, batching in (("mlp_plain", ""), ("mlp_batched", "dynamic_batching { }")):
        params = build_mlp(root / name / "1" / "model.onnx", dims)
        (root / name / "config.pbtxt").write_text(textwrap.dedent(f"""
            platform: "onnxruntime_onnx"
            max_batch_size: 32
            input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ {dims[0]} ] }} ]
            output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ {dims[-1]} ] }} ]
            instance_group [ {{ kind: KIND_CPU count: {instances} }} ]
            parameters {{ key: "intra_op_thread_count" value: {{ string_value: "{threads}" }} }}
            parameters {{ key: "inter_op_thread_count" value: {{ string_value: "1" }} }}
            {batching}
        """))
    return params


def drive(engine: InferenceEngine, model: str, width: int, threads: int, seconds: float) -> tuple[float, float]:
    """Run ``threads`` closed-loop callers for ``seconds``; return (requests/s, mean executed batch)."""
    x = np.random.default_rng(1).random((1, width), dtype=np.float32)
    for _ in range(20):  # warm up the session
        engine.infer(model, {"INPUT0": x})
    before = engine.model_statistics(model)["model_stats"][0]
    counts = [0] * threads
    stop = threading.Event()
    start_gate = threading.Barrier(threads + 1)

    def caller(i: int) -> None:
        inputs = {"INPUT0": x}
        start_gate.wait()
        n = 0
        while not stop.is_set():
            engine.infer(model, inputs)
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start_gate.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    after = engine.model_statistics(model)["model_stats"][0]
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    return sum(counts) / elapsed, inferences / max(1, executions)


def raw_us_per_row(model_path: Path, width: int, batch: int, threads: int) -> float:
    """Best-of-5 ``InferenceSession.run`` time per row at ``batch`` (same session options as the engine)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
    feeds = {"INPUT0": np.random.default_rng(2).random((batch, width), dtype=np.float32)}
    for _ in range(5):
        sess.run(None, feeds)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(20):
            sess.run(None, feeds)
        best = min(best, (time.perf_counter() - t0) / 20)
    return best * 1e6 / batch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--width", type=int, default=1024, help="input and output features")
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--layers", type=int, default=1, help="hidden layers")
    ap.add_argument("--instances", type=int, default=1, help="model instances (both models)")
    ap.add_argument("--intra-op", type=int, default=1, help="onnxruntime intra-op threads per instance")
    args = ap.parse_args()
    dims = [args.width] + [args.hidden] * args.layers + [args.width]
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        params = make_repository(repo, dims, args.instances, args.intra_op)
        with InferenceEngine(repo) as engine:
            x = np.ones((1, args.width), np.float32)
            np.testing.assert_allclose(
                engine.infer("mlp_plain", {"INPUT0": x}).as_numpy("OUTPUT0"),
                engine.infer("mlp_batched", {"INPUT0": x}).as_numpy("OUTPUT0"),
                rtol=1e-5,
            )
            print(
                f"{args.threads} closed-loop callers, {args.seconds:.1f} s each, MLP {'-'.join(map(str, dims))} "
                f"({params / 1e6:.1f} M params), {args.instances} instance(s) x {args.intra_op} onnxruntime thread(s)"
            )
            plain, _ = drive(engine, "mlp_plain", args.width, args.threads, args.seconds)
            batched, mean_batch = drive(engine, "mlp_batched", args.width, args.threads, args.seconds)
        model_path = repo / "mlp_plain" / "1" / "model.onnx"
        raw1 = raw_us_per_row(model_path, args.width, 1, args.intra_op)
        rawb = raw_us_per_row(model_path, args.width, max(1, round(mean_batch)), args.intra_op)
    print(f"without dynamic batching: {plain:8.0f} req/s")
    print(f"with dynamic batching:    {batched:8.0f} req/s   mean executed batch {mean_batch:5.2f}")
    print(f"ratio:                    {batched / plain:8.2f}x")
    print(
        f"raw onnxruntime per row:  batch 1 {raw1:.0f} µs, batch {max(1, round(mean_batch))} {rawb:.0f} µs "
        f"(compute-only ceiling {raw1 / rawb:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
