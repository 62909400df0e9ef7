"""Cost of process isolation for Python models: in-process vs ``isolation: "process"`` vs Triton's stub.

    .venv/bin/python benchmarks/isolation.py                       # engine level + served by tritonlite
    .venv/bin/python benchmarks/isolation.py --tritonserver auto   # also real Triton 2.51 (nvidia-pytriton)

Engine level: mean per-request time of ``engine.infer`` (one caller, so the blocking path) on the same
model.py in-process and isolated, for identity with 16 and 4096 FP32 elements (the arena path) and with
1 Mi elements (4 MiB: the memfd path), and add_sub with two 16-element inputs.

Served: mean latency of sequential HTTP binary-tensor requests over one keep-alive connection (the
same client for every server) to tritonlite serving the model in-process and isolated, and to Triton's
Python backend, which always runs the model in a stub process. The servers are pinned to one core
(``taskset``), as in ``benchmarks/serving.py``, whose helpers start them. Ratios are printed; the
figures go into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import serving  # noqa: E402  (benchmarks/serving.py: repository builder and server starters)

ISOLATED = '\nparameters { key: "isolation" value: { string_value: "process" } }\n'
BIG_CFG = """
name: "identity_1m"
backend: "python"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 1048576 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 1048576 ] } ]
"""
ENGINE_CASES = {
    "identity_16": {"INPUT0": (1, 16)},
    "identity_4096": {"INPUT0": (4096,)},
    "identity_1m": {"INPUT0": (1048576,)},
    "add_sub": {"INPUT0": (16,), "INPUT1": (16,)},
}


def build(root: Path) -> Path:
    serving.build_repository(root, with_onnx=False)
    d = root / "identity_1m"
    (d / "1").mkdir(parents=True)
    (d / "config.pbtxt").write_text(textwrap.dedent(BIG_CFG))
    (d / "1" / "model.py").write_text(textwrap.dedent(serving.IDENTITY_PY))
    for name in ENGINE_CASES:
        iso = root / f"{name}_iso"
        shutil.copytree(root / name, iso)
        cfg = iso / "config.pbtxt"
        cfg.write_text(cfg.read_text().replace(f'name: "{name}"', f'name: "{name}_iso"') + ISOLATED)
    return root


def _inputs(name: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {k: rng.random(shape, dtype=np.float32) for k, shape in ENGINE_CASES[name].items()}


def engine_level(repo: Path, n: int) -> list[tuple[str, float, float]]:
    from tritonlite import InferenceEngine

    rows = []
    with InferenceEngine(repo) as engine:
        for name in ENGINE_CASES:
            inputs = _inputs(name)
            count = max(50, n // 20) if name == "identity_1m" else n
            timings = {}
            for model in (name, f"{name}_iso"):
                out = engine.infer(model, inputs)
                assert np.array_equal(out.as_numpy("OUTPUT0"), inputs["INPUT0"] + (inputs.get("INPUT1", 0)))
                for _ in range(count // 10):
                    engine.infer(model, inputs)
                t0 = time.perf_counter()
                for _ in range(count):
                    engine.infer(model, inputs)
                timings[model] = (time.perf_counter() - t0) / count * 1e6
            rows.append((name, timings[name], timings[f"{name}_iso"]))
    return rows


def http_latency(port: int, model: str, n: int) -> float:
    """Mean µs of ``n`` sequential binary-tensor requests on one keep-alive connection."""
    base = model.removesuffix("_iso")
    body, ihcl = serving.http_binary_body(base)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Inference-Header-Content-Length": str(ihcl), "Content-Type": "application/octet-stream"}

    def one() -> None:
        conn.request("POST", f"/v2/models/{model}/infer", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{model}: HTTP {resp.status} {data[:300]!r}")

    for _ in range(max(20, n // 10)):
        one()
    t0 = time.perf_counter()
    for _ in range(n):
        one()
    elapsed = (time.perf_counter() - t0) / n * 1e6
    conn.close()
    return elapsed


def served(repo: Path, n: int, tritonserver: str | None, triton_venv: Path, core: str) -> list[dict[str, float]]:
    rows = []
    lite = serving.start_tritonlite(repo, core)
    try:
        for name in ("identity_16", "add_sub"):
            rows.append({"model": name, "inproc": http_latency(lite.http_port, name, n),
                         "iso": http_latency(lite.http_port, f"{name}_iso", n)})
    finally:
        lite.stop()
    if tritonserver:
        binary, env = (serving.find_tritonserver(triton_venv) if tritonserver == "auto"
                       else (Path(tritonserver), dict(__import__("os").environ)))
        triton_repo = Path(tempfile.mkdtemp(prefix="iso-triton-"))
        try:
            for name in ("identity_16", "add_sub"):
                shutil.copytree(repo / name, triton_repo / name)
            triton = serving.start_triton(binary, env, triton_repo, core)
            try:
                for row in rows:
                    row["triton"] = http_latency(triton.http_port, row["model"], n)  # type: ignore[index]
            finally:
                triton.stop()
        finally:
            shutil.rmtree(triton_repo, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=2000, help="requests per engine-level case")
    p.add_argument("--served-n", type=int, default=1000, help="requests per served case")
    p.add_argument("--no-served", action="store_true", help="engine level only")
    p.add_argument("--tritonserver", default=None, help="path to a tritonserver binary, or 'auto' (nvidia-pytriton)")
    p.add_argument("--triton-venv", default="/tmp/tritonvenv", type=Path)
    p.add_argument("--server-core", default="0")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        repo = build(Path(tmp) / "models")
        print("engine.infer, mean µs per request")
        print(f"{'model':<16}{'in-process':>12}{'isolated':>12}{'isolated / in-process':>24}")
        for name, inproc, iso in engine_level(repo, args.n):
            print(f"{name:<16}{inproc:>12.1f}{iso:>12.1f}{iso / inproc:>24.1f}")
        if not args.no_served:
            rows = served(repo, args.served_n, args.tritonserver, args.triton_venv, args.server_core)
            print("\nHTTP binary, sequential, mean µs per request")
            head = f"{'model':<14}{'tl in-proc':>12}{'tl isolated':>13}{'iso/in-proc':>13}"
            if args.tritonserver:
                head += f"{'Triton':>10}{'Triton/tl iso':>15}{'Triton/tl in-proc':>19}"
            print(head)
            for r in rows:
                line = f"{r['model']:<14}{r['inproc']:>12.0f}{r['iso']:>13.0f}{r['iso'] / r['inproc']:>13.2f}"
                if "triton" in r:
                    line += f"{r['triton']:>10.0f}{r['triton'] / r['iso']:>15.2f}{r['triton'] / r['inproc']:>19.2f}"
                print(line)
        print(json.dumps({"python": sys.version.split()[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
