"""Per-call latency of a batch-1 infer through the C ABI and the Java binding against the Python API, one run.

    python benchmarks/bindings.py [--iterations 5000] [--rounds 5] [--skip-c] [--skip-java]

Same engine, same models, same loop shape in every language: per call, build the input from new data
(Python: a dict of a fresh array; C: ``TRITONLITE_RequestAddInput`` on a reused request; Java:
``Tensor.ofFloats`` + ``engine.infer(model, Map.of(...))``), run a blocking infer, read OUTPUT0, release
the response. Each binding runs in its own process (a C program linked with libtritonlite.so; a Java main
under the launcher) that runs a batch of calls per line it reads; the Python baseline runs in this process;
the three take turns in interleaved rounds, so load drifts on the machine hit them alike. Models, 16 x FP32 at batch 1, one instance:
a Python identity model.py and an ONNX Runtime identity. Prints p50/p99 per call in µs and the
binding/Python ratio (target: <= 2x).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
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

MODELS = ("identity_py", "identity_onnx")

C_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "tritonlite.h"

#define CHECK(x) do { TRITONLITE_Error* e_ = (x); if (e_) { fprintf(stderr, "%s: %s\n", #x, TRITONLITE_ErrorMessage(e_)); exit(1); } } while (0)

static long long clock_ns(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }

/* reads a call count per line from stdin, runs that many calls per model, prints
   {"model": [[wall µs, ...], [thread CPU µs, ...]], ...} */
int main(int argc, char** argv) {
  TRITONLITE_Engine* engine;
  float x[16] = {0};
  int64_t shape[2] = {1, 16};
  int iters, m, i;
  double sink = 0;
  CHECK(TRITONLITE_EngineNew(&engine, argv[1], NULL));
  TRITONLITE_Request** reqs = malloc(sizeof(TRITONLITE_Request*) * argc);
  for (m = 2; m < argc; ++m) CHECK(TRITONLITE_RequestNew(&reqs[m], engine, argv[m], -1));
  while (scanf("%d", &iters) == 1 && iters > 0) {
    printf("{");
    for (m = 2; m < argc; ++m) {
      long long* cpu = malloc(sizeof(long long) * iters);
      printf("%s\"%s\": [[", m > 2 ? ", " : "", argv[m]);
      for (i = 0; i < iters; ++i) {
        TRITONLITE_Response* resp;
        TRITONLITE_DataType dt; const int64_t* oshape; uint32_t dims; const void* data; size_t size;
        long long c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID), t0 = clock_ns(CLOCK_MONOTONIC);
        x[0] = (float)i;
        CHECK(TRITONLITE_RequestAddInput(reqs[m], "INPUT0", TRITONLITE_TYPE_FP32, shape, 2, x, sizeof x));
        CHECK(TRITONLITE_EngineInfer(engine, reqs[m], &resp));
        CHECK(TRITONLITE_ResponseOutputByName(resp, "OUTPUT0", &dt, &oshape, &dims, &data, &size));
        sink += ((const float*)data)[0];
        CHECK(TRITONLITE_ResponseDelete(resp));
        printf(i ? ",%.2f" : "%.2f", (clock_ns(CLOCK_MONOTONIC) - t0) / 1000.0);
        cpu[i] = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
      }
      printf("], [");
      for (i = 0; i < iters; ++i) printf(i ? ",%.2f" : "%.2f", cpu[i] / 1000.0);
      printf("]]");
      free(cpu);
    }
    printf("}\n");
    fflush(stdout);
  }
  for (m = 2; m < argc; ++m) CHECK(TRITONLITE_RequestDelete(reqs[m]));
  CHECK(TRITONLITE_EngineDelete(engine));
  free(reqs);
  return sink < -1;
}
"""

JAVA_HARNESS = r"""
package bench;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Map;
import org.tritonlite.InferenceEngine;
import org.tritonlite.Tensor;

/** Reads a call count per line, runs that many calls per model, prints {"model": [[wall µs...], [thread CPU µs...]]}. */
public final class Bench {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        ThreadMXBean threads = ManagementFactory.getThreadMXBean();
        double sink = 0;
        try (InferenceEngine engine = InferenceEngine.open(args[0])) {
            long[] shape = {1, 16};
            float[] x = new float[16];
            for (String line = in.readLine(); line != null && Integer.parseInt(line.trim()) > 0; line = in.readLine()) {
                int iters = Integer.parseInt(line.trim());
                StringBuilder out = new StringBuilder("{");
                for (int m = 1; m < args.length; m++) {
                    out.append(m > 1 ? ", " : "").append('"').append(args[m]).append("\": [[");
                    long[] cpu = new long[iters];
                    for (int i = 0; i < iters; i++) {
                        long c0 = threads.getCurrentThreadCpuTime();
                        long t0 = System.nanoTime();
                        x[0] = i;
                        Tensor t = Tensor.ofFloats(shape, x);
                        sink += engine.infer(args[m], Map.of("INPUT0", t)).output("OUTPUT0").asFloats()[0];
                        long dt = System.nanoTime() - t0;
                        cpu[i] = threads.getCurrentThreadCpuTime() - c0;
                        out.append(i > 0 ? "," : "").append(dt / 1000.0);
                    }
                    out.append("], [");
                    for (int i = 0; i < iters; i++) {
                        out.append(i > 0 ? "," : "").append(cpu[i] / 1000.0);
                    }
                    out.append("]]");
                }
                System.out.println(out.append('}'));
                System.out.flush();
            }
        }
        if (sink < -1) {
            System.out.println(sink);
        }
    }
}
"""


def make_repository(root: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_onnx_models", ROOT / "examples" / "build_onnx_models.py")
    builders = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(builders)  # type: ignore[union-attr]
    builders.identity(root / "identity_onnx" / "1" / "model.onnx", ["batch", 16])
    io = """
        max_batch_size: 8
        input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] } ]
        instance_group [ { kind: KIND_CPU count: 1 } ]
    """
    (root / "identity_onnx" / "config.pbtxt").write_text(
        textwrap.dedent('platform: "onnxruntime_onnx"' + io)
        + 'parameters { key: "intra_op_thread_count" value: { string_value: "1" } }\n'
        + 'parameters { key: "inter_op_thread_count" value: { string_value: "1" } }\n'
    )
    (root / "identity_py" / "1").mkdir(parents=True)
    (root / "identity_py" / "config.pbtxt").write_text(textwrap.dedent('backend: "python"' + io))
    (root / "identity_py" / "1" / "model.py").write_text(
        textwrap.dedent(
            """
            import triton_python_backend_utils as pb_utils

            class TritonPythonModel:
                def execute(self, requests):
                    return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
                            for r in requests]
            """
        )
    )


class Harness:
    """A benchmark process (C or Java) that runs N calls per model for each line it reads."""

    def __init__(self, cmd: list[str], **kwargs: object) -> None:
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kwargs)  # type: ignore[call-overload]

    def run(self, iterations: int) -> dict[str, list[list[float]]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{iterations}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark process {self.proc.args[0]} exited with {self.proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("0\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def start_c(repo: Path, work: Path) -> Harness:
    from tritonlite.capi import build as capi_build

    capi_build.build(work / "capi")
    src = work / "bench.c"
    src.write_text(C_HARNESS)
    exe = work / "bench_c"
    cc = shutil.which("gcc") or shutil.which("cc")
    subprocess.run([cc, "-O2", str(src), "-o", str(exe), *capi_build.cflags(), *capi_build.ldflags(work / "capi")], check=True)
    return Harness([str(exe), str(repo), *MODELS], env={})


def start_java(repo: Path, work: Path) -> Harness:
    from tritonlite.jvm import build_jar, javac

    jar = build_jar(work / "jar")
    src = work / "Bench.java"
    src.write_text(JAVA_HARNESS)
    classes = work / "java-classes"
    classes.mkdir()
    javac([], [src], classes, [jar])
    # serial GC: on a small machine, parallel GC threads compete with the measured thread for cores
    cmd = [sys.executable, "-m", "tritonlite.jvm.launcher", "--jar-dir", str(jar.parent), "-cp", str(classes), "-J-XX:+UseSerialGC", "bench.Bench", str(repo), *MODELS]
    return Harness(cmd, cwd=ROOT)


def python_run(engine: InferenceEngine, iterations: int) -> dict[str, list[list[float]]]:
    x = np.zeros((1, 16), np.float32)
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    out = {}
    for model in MODELS:
        wall, cpu = [], []
        for i in range(iterations):
            c0 = cpu_clock()
            t0 = clock()
            x[0, 0] = i
            float(engine.infer(model, {"INPUT0": x.copy()}).as_numpy("OUTPUT0")[0, 0])
            wall.append((clock() - t0) / 1000.0)
            cpu.append((cpu_clock() - c0) / 1000.0)
        out[model] = [wall, cpu]
    return out


def pct(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iterations", type=int, default=5000, help="calls per model and language (split over the rounds)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (python, C, Java, python, ...) against drift")
    ap.add_argument("--skip-c", action="store_true")
    ap.add_argument("--skip-java", action="store_true")
    args = ap.parse_args()
    per_round = max(1, args.iterations // args.rounds)
    with tempfile.TemporaryDirectory(prefix="tritonlite-bindings-") as tmp:
        work = Path(tmp)
        repo = work / "models"
        make_repository(repo)
        doors: dict[str, Callable[[int], dict[str, list[list[float]]]]] = {}
        harnesses: list[Harness] = []
        with InferenceEngine(repo) as engine:
            doors["python"] = lambda n: python_run(engine, n)
            if not args.skip_c:
                harnesses.append(start_c(repo, work))
                doors["c"] = harnesses[-1].run
            if not args.skip_java:
                harnesses.append(start_java(repo, work))
                doors["java"] = harnesses[-1].run
            for run in doors.values():  # warm-up rounds, discarded (JIT, caches, first-call setup)
                run(2000)
                run(2000)
            wall: dict[str, dict[str, list[float]]] = {d: {m: [] for m in MODELS} for d in doors}
            cpu: dict[str, dict[str, list[float]]] = {d: {m: [] for m in MODELS} for d in doors}
            for _ in range(args.rounds):
                for door, run in doors.items():
                    for model, (w, c) in run(per_round).items():
                        wall[door][model].extend(w)
                        cpu[door][model].extend(c)
            for h in harnesses:
                h.close()
    print(f"per-call latency of a blocking batch-1 infer, 16 x FP32, {per_round * args.rounds} calls per model and language "
          f"in {args.rounds} interleaved rounds (µs; cpu = the calling thread's CPU time, which a busy machine does not inflate)")
    for model in MODELS:
        base50, base99, basec = pct(wall["python"][model], 0.5), pct(wall["python"][model], 0.99), pct(cpu["python"][model], 0.5)
        print(f"{model:<14} python   p50 {base50:7.1f}  p99 {base99:7.1f}  cpu p50 {basec:6.1f}")
        for door in ("c", "java"):
            if door in wall:
                p50, p99, c50 = pct(wall[door][model], 0.5), pct(wall[door][model], 0.99), pct(cpu[door][model], 0.5)
                print(
                    f"{'':<14} {door:<8} p50 {p50:7.1f}  p99 {p99:7.1f}  cpu p50 {c50:6.1f}  "
                    f"ratio p50 {p50 / base50:4.2f}x  cpu ratio {c50 / basec:4.2f}x  overhead p50 {p50 - base50:5.1f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
