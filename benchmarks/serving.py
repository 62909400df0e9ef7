"""Serving benchmark: throughput and p50/p99 latency of HTTP JSON, HTTP binary and gRPC.

    .venv/bin/python benchmarks/serving.py                       # tritonlite only
    .venv/bin/python benchmarks/serving.py --tritonserver auto   # also real Triton (nvidia-pytriton's binary)

Models: a Python identity model with 16 and with 4096 FP32 elements, and an ONNX add_sub (16 FP32 per
input, batch 1). Concurrency 1 and 16. The load client is ``h2load`` (Debian ``nghttp2-client``,
C, HTTP/1.1 keep-alive for HTTP and h2c with a pre-serialised length-prefixed message for gRPC), so the
client is not the bottleneck. The server runs in its own process pinned to one core and h2load to
another (``taskset``); every run is checked against the server's statistics (all requests succeeded).

``--workers N`` measures something else: ``tritonlite serve`` (add_sub, HTTP binary, c=16) as one process
pinned to one core against ``--workers N`` processes on every core, with the CPU the server and the client
used, each round with ``wrk`` (Debian ``wrk``, the leaner client) and with h2load; ``--rounds`` repeats it.
``--grpc-frontend grpcio`` serves gRPC with grpcio's server instead of tritonlite's own HTTP/2 front.

With ``--tritonserver`` the same repository is served by a real ``tritonserver`` binary (pinned to the same
core) in the same run and the ratios tritonlite / Triton are printed. ``auto`` finds the binary of an
``nvidia-pytriton`` install in ``--triton-venv`` (a separate venv; pytriton's pins clash with ours).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

IDENTITY_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", x)]))
        return out
"""

ADD_SUB_PY = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            a = pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(r, "INPUT1").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT0", a + b), pb_utils.Tensor("OUTPUT1", a - b)]))
        return out
"""

IDENTITY_CFG = """
name: "{name}"
backend: "python"
max_batch_size: 0
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ {n} ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ {n} ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""

IDENTITY_BATCHED_CFG = """
name: "{name}"
backend: "python"
max_batch_size: 16
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ {n} ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ {n} ] }} ]
dynamic_batching {{ }}
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""

ADD_SUB_CFG = """
name: "add_sub"
backend: "python"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
"""

ONNX_CFG = """
name: "add_sub_onnx"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "INPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 16 ] }, { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 16 ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
"""

#: model -> (inputs {name: shape}, outputs). identity_16 batches dynamically (requests of batch 1);
#: add_sub_onnx runs on tritonlite only (pytriton's tritonserver ships the Python backend alone).
MODELS: dict[str, tuple[dict[str, list[int]], list[str]]] = {
    "identity_16": ({"INPUT0": [1, 16]}, ["OUTPUT0"]),
    "identity_4096": ({"INPUT0": [4096]}, ["OUTPUT0"]),
    "add_sub": ({"INPUT0": [16], "INPUT1": [16]}, ["OUTPUT0", "OUTPUT1"]),
    "add_sub_onnx": ({"INPUT0": [1, 16], "INPUT1": [1, 16]}, ["OUTPUT0", "OUTPUT1"]),
}
PROTOCOLS = ("http-json", "http-binary", "grpc")

#: the rows issue 10 sets targets on: (model, protocol, concurrency)
ISSUE_ROWS: list[tuple[str, str, int]] = [
    ("identity_16", "http-json", 16),
    ("identity_16", "http-binary", 16),
    ("identity_16", "grpc", 16),
    ("identity_4096", "http-json", 16),
    ("identity_4096", "grpc", 16),
    ("add_sub", "http-binary", 1),
    ("add_sub", "grpc", 1),
    ("identity_16", "http-binary", 1),
    ("identity_16", "grpc", 1),
]


def build_repository(root: Path, with_onnx: bool = True) -> Path:
    for name, cfg, n in (("identity_16", IDENTITY_BATCHED_CFG, 16), ("identity_4096", IDENTITY_CFG, 4096)):
        d = root / name
        (d / "1").mkdir(parents=True, exist_ok=True)
        (d / "config.pbtxt").write_text(textwrap.dedent(cfg.format(name=name, n=n)))
        (d / "1" / "model.py").write_text(textwrap.dedent(IDENTITY_PY))
    d = root / "add_sub"
    (d / "1").mkdir(parents=True, exist_ok=True)
    (d / "config.pbtxt").write_text(textwrap.dedent(ADD_SUB_CFG))
    (d / "1" / "model.py").write_text(textwrap.dedent(ADD_SUB_PY))
    if with_onnx:
        import importlib.util

        spec = importlib.util.spec_from_file_location("build_onnx_models", ROOT / "examples" / "build_onnx_models.py")
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        d = root / "add_sub_onnx"
        mod.add_sub(d / "1" / "model.onnx")
        (d / "config.pbtxt").write_text(textwrap.dedent(ONNX_CFG))
    return root


# ---- request bodies -------------------------------------------------------------------------------------
def _arrays(model: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {name: rng.random(shape, dtype=np.float32) for name, shape in MODELS[model][0].items()}


def http_json_body(model: str) -> bytes:
    inputs = [{"name": k, "shape": list(v.shape), "datatype": "FP32", "data": v.reshape(-1).tolist()} for k, v in _arrays(model).items()]
    outputs = [{"name": o, "parameters": {"binary_data": False}} for o in MODELS[model][1]]
    return json.dumps({"inputs": inputs, "outputs": outputs}).encode()


def http_binary_body(model: str) -> tuple[bytes, int]:
    arrays = _arrays(model)
    inputs = [{"name": k, "shape": list(v.shape), "datatype": "FP32", "parameters": {"binary_data_size": v.nbytes}} for k, v in arrays.items()]
    outputs = [{"name": o, "parameters": {"binary_data": True}} for o in MODELS[model][1]]
    header = json.dumps({"inputs": inputs, "outputs": outputs}).encode()
    return header + b"".join(v.tobytes() for v in arrays.values()), len(header)


def grpc_body(model: str) -> bytes:
    """One length-prefixed gRPC message (what tritonclient.grpc sends for this request)."""
    from tritonlite.protos import grpc_service_pb2 as pb

    req = pb.ModelInferRequest(model_name=model)
    for k, v in _arrays(model).items():
        req.inputs.add(name=k, datatype="FP32", shape=v.shape)
        req.raw_input_contents.append(v.tobytes())
    for o in MODELS[model][1]:
        req.outputs.add(name=o)
    msg = req.SerializeToString()
    return b"\x00" + struct.pack(">I", len(msg)) + msg


# ---- servers ----------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_tritonlite(repo: str, http_port: int, grpc_port: int, inline_us: float | None = None, grpc_frontend: str = "native") -> None:
    """Child-process entry: one engine behind both doors until SIGTERM."""
    from tritonlite import InferenceEngine
    from tritonlite.grpc import GrpcServer
    from tritonlite.http import HttpServer

    stop = False

    def on_term(*_: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    with InferenceEngine(repo) as engine:
        http = HttpServer(engine, "127.0.0.1", http_port, **({} if inline_us is None else {"inline_compute_us": inline_us})).start()
        grpc_server = GrpcServer(engine, "127.0.0.1", grpc_port, frontend=grpc_frontend).start()
        print("READY", flush=True)
        while not stop:
            time.sleep(0.2)
        grpc_server.stop(grace=1)
        http.stop(1)


def _wait_ready(http_port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


class Server:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str] | None, http_port: int, grpc_port: int) -> None:
        self.name, self.http_port, self.grpc_port = name, http_port, grpc_port
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        try:
            _wait_ready(http_port, self.proc)
        except Exception:
            self.stop()
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"{name} failed to start:\n{err[-3000:]}") from None

    def success_count(self, model: str) -> tuple[int, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v2/models/{model}/stats", timeout=10) as r:
            stats = json.loads(r.read())["model_stats"][0]["inference_stats"]
        return int(stats["success"]["count"]), int(stats["fail"]["count"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_tritonlite(repo: Path, core: str, inline_us: float | None = None, grpc_frontend: str = "native") -> Server:
    http_port, grpc_port = _free_port(), _free_port()
    cmd = ["taskset", "-c", core, sys.executable, str(Path(__file__).resolve()), "--serve", str(repo), str(http_port), str(grpc_port)]
    if inline_us is not None:
        cmd += ["--http-inline-us", str(inline_us)]
    cmd += ["--grpc-frontend", grpc_frontend]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return Server("tritonlite", cmd, env, http_port, grpc_port)


def find_tritonserver(venv: Path) -> tuple[Path, dict[str, str]]:
    """The tritonserver binary bundled with nvidia-pytriton, set up to run here: its bundled libraries on
    LD_LIBRARY_PATH, the Python-version-matched backend stub in its python backend folder, the venv's
    bin first on PATH."""
    found = sorted(venv.glob("lib/python3*/site-packages/pytriton/tritonserver"))
    if not found:
        raise SystemExit(f"no pytriton install in {venv}: python3.11 -m venv {venv} && {venv}/bin/pip install nvidia-pytriton")
    base = found[0]
    pyver = base.parts[-4].removeprefix("python")
    stub = base / "backends" / "python" / "triton_python_backend_stub"
    if not stub.exists():
        shutil.copy2(base / "python_backend_stubs" / pyver / "triton_python_backend_stub", stub)
    libs = base.parent.parent / "nvidia_pytriton.libs"
    env = dict(os.environ, LD_LIBRARY_PATH=f"{libs}:{os.environ.get('LD_LIBRARY_PATH', '')}", PATH=f"{venv / 'bin'}:{os.environ['PATH']}")
    return base / "bin" / "tritonserver", env


def start_triton(binary: Path, env: dict[str, str], repo: Path, core: str) -> Server:
    http_port, grpc_port = _free_port(), _free_port()
    backends = binary.parent.parent / "backends"
    cmd = ["taskset", "-c", core, str(binary), f"--model-repository={repo}", f"--http-port={http_port}",
           f"--grpc-port={grpc_port}", "--allow-metrics=false", f"--backend-directory={backends}", "--log-info=false"]
    return Server("triton", cmd, env, http_port, grpc_port)


# ---- load --------------------------------------------------------------------------------------------------
def h2load(url: str, body: bytes, headers: list[str], concurrency: int, seconds: float, core: str, http1: bool) -> dict[str, float]:
    """One closed-loop run; latency percentiles from h2load's per-request log."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "body"
        data.write_bytes(body)
        log = Path(tmp) / "log"
        conns, streams = (concurrency, 1) if http1 else (1, concurrency)
        cmd = ["taskset", "-c", core, "h2load", "-c", str(conns), "-m", str(streams), "-t", "1", "-D", f"{seconds:g}",
               "--warm-up-time", "1", "-d", str(data), f"--log-file={log}"]
        if http1:
            cmd.append("--h1")
        for h in headers:
            cmd += ["-H", h]
        cmd.append(url)
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"h2load failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")
        rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    # requests still in flight when the duration ends are logged without a status: not counted
    done_rows = [r for r in rows if r[1] == "200"]
    lat = np.array([int(r[2]) for r in done_rows], dtype=np.float64) / 1000.0  # ms
    done = next((line for line in out.stdout.splitlines() if line.startswith("finished in")), "")
    rps = float(done.split(",")[1].split()[0]) if done else len(done_rows) / seconds
    bad = [r for r in rows if r[1] not in ("200", "-1", "0")]
    return {"rps": rps, "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)), "n": len(done_rows),
            "ok": not bad and len(done_rows) > 0}


def _case(server: Server, model: str, proto: str) -> tuple[str, bytes, list[str], bool]:
    """(url, body, headers, http1) of one (model, protocol) case against ``server``."""
    if proto == "grpc":
        return (f"http://127.0.0.1:{server.grpc_port}/inference.GRPCInferenceService/ModelInfer", grpc_body(model),
                ["content-type: application/grpc", "te: trailers"], False)
    url = f"http://127.0.0.1:{server.http_port}/v2/models/{model}/infer"
    if proto == "http-json":
        return url, http_json_body(model), [], True
    body, ihcl = http_binary_body(model)
    return url, body, [f"Inference-Header-Content-Length: {ihcl}"], True


def run_row(server: Server, model: str, proto: str, conc: int, seconds: float, client_core: str) -> dict[str, Any]:
    """One measured case, checked against the server's own statistics."""
    url, body, headers, http1 = _case(server, model, proto)
    before = server.success_count(model)
    r = h2load(url, body, headers, conc, seconds, client_core, http1)
    after = server.success_count(model)
    # requests still in flight when h2load stops are reset by it and cancelled (failures <= concurrency)
    r["verified"] = r["ok"] and after[1] - before[1] <= conc and after[0] - before[0] >= r["n"]
    r["check"] = f"(logged {r['n']} ok, server counted {after[0] - before[0]} successes, {after[1] - before[1]} failures)"
    r.update(server=server.name, model=model, protocol=proto, concurrency=conc)
    print(f"  {server.name:10s} {model:14s} {proto:11s} c={conc:<3d} {r['rps']:9.0f} req/s  "
          f"p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms  {'ok' if r['verified'] else 'UNVERIFIED ' + r['check']}", flush=True)
    return r


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (their threads included)."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            for task in os.listdir(f"/proc/{pids[i]}/task"):
                try:
                    with open(f"/proc/{pids[i]}/task/{task}/children") as f:
                        pids += [int(c) for c in f.read().split()]
                except OSError:
                    pass
        except OSError:
            pass
        i += 1
    total = 0
    for p in set(pids):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def wrk(url: str, body: bytes, headers: list[str], concurrency: int, seconds: float, core: str) -> dict[str, Any]:
    """One closed-loop HTTP/1.1 run with ``wrk`` (one thread, ``concurrency`` keep-alive connections)."""
    import re

    with tempfile.TemporaryDirectory(prefix="tl-wrk-") as tmp:
        data, script = Path(tmp) / "body", Path(tmp) / "post.lua"
        data.write_bytes(body)
        lines = ['wrk.method = "POST"', f'local f = io.open("{data}", "rb")', "wrk.body = f:read('*all')", "f:close()"]
        for h in headers:
            name, value = (x.strip() for x in h.split(":", 1))
            lines.append(f'wrk.headers["{name}"] = "{value}"')
        script.write_text("\n".join(lines) + "\n")
        cmd = ["taskset", "-c", core, "wrk", "-t", "1", "-c", str(concurrency), "-d", f"{seconds:g}s", "--latency",
               "-s", str(script), url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0 or "Requests/sec:" not in out.stdout:
        raise RuntimeError(f"wrk failed: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out.stdout).group(1))
    m = re.search(r"\s50%\s+([\d.]+)(us|ms|s)\b", out.stdout)
    p50 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)] if m else float("nan")
    # wrk counts non-2xx answers and socket errors separately; a clean run has neither
    ok = "Non-2xx" not in out.stdout and "Socket errors" not in out.stdout
    return {"rps": rps, "p50": p50, "ok": ok}


def run_workers(workers: int, seconds: float, rounds: int = 3, model: str = "add_sub", concurrency: int = 16,
                worker_cores: str | None = None, client_cores: str | None = None) -> None:
    """``tritonlite serve`` as one process pinned to core 0 (client on core 1), then ``--workers N`` on every
    core (client unpinned too), HTTP binary; prints the throughput ratio and where the CPU went.

    On a machine whose cores the client shares, the ratio is bounded by ``N*s / (s + c)`` (s: server CPU a
    request, c: client CPU a request), so each round runs both closed-loop clients at hand: ``wrk`` (the
    leaner, ~13 us a request here) and ``h2load`` (~14-19 us, the client of the issue's table)."""
    import resource

    def serve(extra: list[str], core: str | None) -> subprocess.Popen:
        cmd = (["taskset", "-c", core] if core else []) + [
            sys.executable, "-m", "tritonlite", "serve", "--model-repository", str(repo), "--http-port", str(hp),
            "--grpc-port", str(_free_port()), "--metrics-port", str(_free_port()), *extra]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)))
        _wait_ready(hp, proc)
        return proc

    def measure(client: str, core: str, span: float) -> dict[str, Any]:
        if client == "wrk":
            return wrk(url, body, headers, concurrency, span, core)
        return h2load(url, body, headers, concurrency, span - 1.0, core, True)  # h2load adds a 1 s warm-up

    clients = [c for c in ("wrk", "h2load") if shutil.which(c)]
    every = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    one_core, one_client = (worker_cores.split(",")[0], client_cores) if worker_cores and client_cores else ("0", "1")
    many_server, many_client = worker_cores, client_cores or every
    body, ihcl = http_binary_body(model)
    headers = [f"Inference-Header-Content-Length: {ihcl}"]
    span = seconds + 1.0
    ratios: dict[str, list[float]] = {c: [] for c in clients}
    with tempfile.TemporaryDirectory(prefix="tl-workers-") as tmp:
        repo = build_repository(Path(tmp) / "models", with_onnx=False)
        for rnd in range(rounds):
            figures: dict[tuple[str, int], float] = {}
            for n, server_core, client_core in ((1, one_core, one_client), (workers, many_server, many_client)):
                hp = _free_port()
                url = f"http://127.0.0.1:{hp}/v2/models/{model}/infer"
                proc = serve(["--workers", str(n)] if n > 1 else [], server_core)
                try:
                    for client in clients:
                        measure(client, client_core, 2.0)  # warm every worker's connections and caches
                        cpu0, child0 = _tree_cpu_seconds(proc.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
                        t0 = time.perf_counter()
                        r = measure(client, client_core, span)
                        elapsed = time.perf_counter() - t0
                        cpu1, child1 = _tree_cpu_seconds(proc.pid), resource.getrusage(resource.RUSAGE_CHILDREN)
                        client_cpu = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
                        server_cpu = cpu1 - cpu0
                        figures[client, n] = r["rps"]
                        print(f"  round {rnd + 1} {client:6s} {n} worker(s), server on core(s) {server_core or every}, "
                              f"client on {client_core}: {r['rps']:9.0f} req/s  p50 {r['p50']:.3f} ms  "
                              f"server CPU {server_cpu / elapsed:.2f} cores ({server_cpu / (r['rps'] * elapsed) * 1e6:.0f} us a request), "
                              f"client CPU {client_cpu / elapsed:.2f} cores ({client_cpu / (r['rps'] * elapsed) * 1e6:.0f} us a request)"
                              f"{'' if r['ok'] else '  ERRORS'}", flush=True)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    proc.wait(60)
            for client in clients:
                ratios[client].append(figures[client, workers] / figures[client, 1])
        print()
        for client in clients:
            rs = sorted(ratios[client])
            print(f"{model} HTTP binary c={concurrency}, {client}: {workers} workers on core(s) {many_server or every} = "
                  f"{float(np.median(rs)):.2f}x one pinned core (median of {len(rs)}; {rs[0]:.2f}-{rs[-1]:.2f})")


def print_ratios(results: list[dict[str, Any]]) -> None:
    print("\nratios tritonlite / Triton (throughput: higher is better; p50: lower is better)")
    for r in results:
        if r["server"] != "tritonlite":
            continue
        same = [x for x in results if x["server"] == "triton" and all(x[k] == r[k] for k in ("model", "protocol", "concurrency", "round"))]
        if same:
            t = same[0]
            r["throughput_ratio"], r["p50_ratio"] = r["rps"] / t["rps"], r["p50"] / t["p50"]
            print(f"  {r['model']:14s} {r['protocol']:11s} c={r['concurrency']:<3d} {r['rps']:9.0f} vs {t['rps']:9.0f} req/s  "
                  f"throughput {r['throughput_ratio']:.2f}x  p50 {r['p50']:.3f} vs {t['p50']:.3f} ms  {r['p50_ratio']:.2f}x")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per case (after 1 s warm-up)")
    p.add_argument("--matrix", action="store_true",
                   help="every --models x --protocols x --concurrency case instead of the issue's rows")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    p.add_argument("--models", nargs="+", default=None, choices=list(MODELS), help="only these models")
    p.add_argument("--protocols", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    p.add_argument("--rounds", type=int, default=1, help="repeat every row this many times")
    p.add_argument("--server-core", default="0")
    p.add_argument("--client-core", default="1")
    p.add_argument("--tritonserver", default=None, help="path to a tritonserver binary, or 'auto' (nvidia-pytriton)")
    p.add_argument("--triton-venv", default="/tmp/tritonvenv", type=Path)
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    p.add_argument("--http-inline-us", type=float, default=None,
                   help="tritonlite's HttpServer(inline_compute_us=...) (default: the server's default)")
    p.add_argument("--workers", type=int, default=0, metavar="N",
                   help="instead of the rows: add_sub HTTP binary c=16, one pinned process vs tritonlite serve --workers N on every core")
    p.add_argument("--worker-cores", default=None, help="with --workers: the cores the workers may use (default: every core)")
    p.add_argument("--client-cores", default=None, help="with --workers: the cores the load client may use (default: every core)")
    p.add_argument("--grpc-frontend", default="native", choices=("native", "grpcio"), help="tritonlite's gRPC front")
    p.add_argument("--serve", nargs=3, metavar=("REPO", "HTTP_PORT", "GRPC_PORT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve_tritonlite(args.serve[0], int(args.serve[1]), int(args.serve[2]), args.http_inline_us, args.grpc_frontend)
        return 0
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install -y nghttp2-client")
    if args.workers:
        run_workers(args.workers, args.seconds, args.rounds, worker_cores=args.worker_cores, client_cores=args.client_cores)
        return 0
    if args.matrix:
        rows = [(m, pr, c) for m in (args.models or list(MODELS)) for pr in args.protocols for c in args.concurrency]
    else:
        rows = [r for r in ISSUE_ROWS if (args.models is None or r[0] in args.models) and r[1] in args.protocols]
    with tempfile.TemporaryDirectory(prefix="tl-serving-") as tmp:
        repo = build_repository(Path(tmp) / "models", with_onnx=any(m == "add_sub_onnx" for m, _, _ in rows))
        print(f"server on core {args.server_core}, h2load on core {args.client_core}, {args.seconds:g} s per case")
        results: list[dict[str, Any]] = []
        servers = [start_tritonlite(repo, args.server_core, args.http_inline_us, args.grpc_frontend)]
        try:
            if args.tritonserver:
                binary, env = (find_tritonserver(args.triton_venv) if args.tritonserver == "auto"
                               else (Path(args.tritonserver), dict(os.environ)))
                # pytriton's tritonserver ships the Python backend only: Triton serves the Python models
                triton_repo = build_repository(Path(tmp) / "triton_models", with_onnx=False)
                servers.append(start_triton(binary, env, triton_repo, args.server_core))
            # both servers stay up (the idle one costs nothing); each row runs on both back to back, the
            # order flipping every row, so that the machine's other load hits both alike
            for rnd in range(args.rounds):
                for i, (model, proto, conc) in enumerate(rows):
                    order = servers if (i + rnd) % 2 == 0 else servers[::-1]
                    for server in order:
                        if server.name == "triton" and model == "add_sub_onnx":
                            continue
                        results.append(dict(run_row(server, model, proto, conc, args.seconds, args.client_core), round=rnd))
        finally:
            for server in servers:
                server.stop()
        if args.tritonserver:
            print_ratios(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
