"""Ray Serve benchmark: add_sub through ``tritonlite.ray`` with 1 and 2 replicas vs ``tritonlite serve``.

    .venv/bin/python benchmarks/ray_serve.py                 # needs the [ray] extra and h2load

One run, one client: ``h2load`` (HTTP/1.1 keep-alive, KServe v2 binary tensors, the examples'
add_sub Python model, 4 x FP32 per input) at concurrency 1 and 16 against

- ``tritonlite serve`` (the CLI, one process: the baseline, measured before and after Serve; the mean counts),
- a local Ray cluster (``ray.init``, all cores) running ``tritonlite.ray.app`` with 1 replica, then 2,
  behind Serve's HTTP proxy on 127.0.0.1 (proxy -> ingress -> replica: two Serve hops);
- Serve's own floor on the same cluster: do-nothing deployments answering the same request in one hop
  (proxy -> deployment) and in two (proxy -> deployment -> deployment, the shape tritonlite.ray has).

Printed: throughput and p50/p99 per case, then the ratios: 2 replicas / 1 replica (throughput),
Serve / ``tritonlite serve`` (throughput), the per-request cost Serve adds (p50 at concurrency 1,
Serve minus ``tritonlite serve``) and how much of it Serve's two-hop floor already is. Every case checks
that all answers were HTTP 200, and each tritonlite setup one ``tritonclient`` answer for its values. Nothing is pinned: Serve is several processes (proxy, ingress,
replicas, controller) and this is what a user gets on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from serving import Server, _free_port, h2load  # noqa: E402  (the serving benchmark's client and process helpers)

A = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
B = np.array([0.5, 0.25, 0.125, 0.0625], dtype=np.float32)


def binary_body() -> tuple[bytes, int]:
    inputs = [{"name": n, "shape": [4], "datatype": "FP32", "parameters": {"binary_data_size": 16}} for n in ("INPUT0", "INPUT1")]
    outputs = [{"name": n, "parameters": {"binary_data": True}} for n in ("OUTPUT0", "OUTPUT1")]
    header = json.dumps({"inputs": inputs, "outputs": outputs}).encode()
    return header + A.tobytes() + B.tobytes(), len(header)


def check_values(address: str) -> None:
    """One tritonclient answer, so a fast wrong server cannot win."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(address, network_timeout=60)
    inputs = [httpclient.InferInput("INPUT0", [4], "FP32"), httpclient.InferInput("INPUT1", [4], "FP32")]
    inputs[0].set_data_from_numpy(A)
    inputs[1].set_data_from_numpy(B)
    result = client.infer("add_sub", inputs)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), A + B)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), A - B)


def measure(name: str, address: str, concurrency: list[int], seconds: float, path: str = "/v2/models/add_sub/infer",
            check: bool = True) -> list[dict[str, Any]]:
    if check:
        check_values(address)
    body, ihcl = binary_body()
    rows = []
    for conc in concurrency:
        r = h2load(f"http://{address}{path}", body, [f"Inference-Header-Content-Length: {ihcl}"],
                   conc, seconds, core=f"0-{(os.cpu_count() or 1) - 1}", http1=True)
        r.update(setup=name, concurrency=conc)
        print(f"  {name:24s} c={conc:<3d} {r['rps']:8.0f} req/s  p50 {r['p50']:7.3f} ms  p99 {r['p99']:7.3f} ms  "
              f"{'ok' if r['ok'] else 'NOT ALL 200'}", flush=True)
        rows.append(r)
    return rows


def start_cli(repo: Path) -> Server:
    http_port = _free_port()
    cmd = [sys.executable, "-m", "tritonlite", "serve", "--model-repository", str(repo), "--http-port", str(http_port),
           "--allow-grpc", "false", "--allow-metrics", "false", "--log-info", "false"]
    return Server("tritonlite serve", cmd, dict(os.environ, PYTHONPATH=str(ROOT)), http_port, 0)


def floor_apps() -> tuple[Any, Any]:
    """Do-nothing Serve applications: proxy -> deployment, and proxy -> deployment -> deployment."""
    from ray import serve

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)  # as the ingress
    class Nothing:
        async def __call__(self, request: Any) -> bytes:
            await request.body()
            return b"{}"

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)  # as the ingress
    class Inner:
        async def __call__(self, body: bytes) -> bytes:
            return b"{}"

    @serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)  # as the ingress
    class Outer:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        async def __call__(self, request: Any) -> bytes:
            return await self.inner.remote(await request.body())

    return Nothing.bind(), Outer.bind(Inner.bind())


def run_serve(repo: Path, replicas: list[int], concurrency: list[int], seconds: float) -> list[dict[str, Any]]:
    import ray
    from ray import serve

    import tritonlite.ray as tlray

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    port = _free_port()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tl-ray-") as tmp:
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, _temp_dir=tmp)
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            for n in replicas:
                handle = serve.run(tlray.app(repo, num_replicas=n, engine_options={"gpu_metrics": False}),
                                   name="bench", route_prefix="/", blocking=False)
                deadline = time.monotonic() + 120
                while len(handle.replicas.remote().result(timeout_s=30)) != n:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{n} replicas did not come up")
                    time.sleep(0.5)
                rows += measure(f"Ray Serve, {n} replica{'s' if n > 1 else ''}", f"127.0.0.1:{port}", concurrency, seconds)
            serve.delete("bench")
            one, two = floor_apps()
            serve.run(one, name="floor1", route_prefix="/floor1", blocking=False)
            serve.run(two, name="floor2", route_prefix="/floor2", blocking=False)
            rows += measure("Serve floor, 1 hop", f"127.0.0.1:{port}", concurrency, seconds, "/floor1", check=False)
            rows += measure("Serve floor, 2 hops", f"127.0.0.1:{port}", concurrency, seconds, "/floor2", check=False)
        finally:
            serve.shutdown()
            ray.shutdown()
    return rows


def ratios(rows: list[dict[str, Any]], concurrency: list[int]) -> dict[str, float]:
    by = {(r["setup"], r["concurrency"]): r for r in rows}
    out: dict[str, float] = {}
    print("\nratios (same client, same run)")
    for c in concurrency:
        base, one, two = by.get(("tritonlite serve", c)), by.get(("Ray Serve, 1 replica", c)), by.get(("Ray Serve, 2 replicas", c))
        if one and two:
            out[f"two_over_one_c{c}"] = two["rps"] / one["rps"]
            print(f"  c={c:<3d} Serve 2 replicas / 1 replica throughput: {out[f'two_over_one_c{c}']:.2f}x")
        if base and one:
            out[f"serve_over_cli_c{c}"] = one["rps"] / base["rps"]
            print(f"  c={c:<3d} Serve (1 replica) / tritonlite serve throughput: {out[f'serve_over_cli_c{c}']:.3f}x")
        floor = by.get(("Serve floor, 2 hops", c))
        if one and floor:
            out[f"over_floor_c{c}"] = one["rps"] / floor["rps"]
            print(f"  c={c:<3d} Serve (1 replica) / Serve's two-hop floor throughput: {out[f'over_floor_c{c}']:.2f}x")
    base, one = by.get(("tritonlite serve", 1)), by.get(("Ray Serve, 1 replica", 1))
    if base and one:
        out["added_p50_ms"] = one["p50"] - base["p50"]
        print(f"  per-request cost Serve adds (p50 at c=1): {out['added_p50_ms']:.2f} ms "
              f"({one['p50']:.3f} vs {base['p50']:.3f} ms)")
    floor1, floor2 = by.get(("Serve floor, 1 hop", 1)), by.get(("Serve floor, 2 hops", 1))
    if floor1 and floor2 and one:
        out["floor1_p50_ms"], out["floor2_p50_ms"] = floor1["p50"], floor2["p50"]
        print(f"  Serve's own floor (do-nothing, p50 at c=1): 1 hop {floor1['p50']:.2f} ms, 2 hops {floor2['p50']:.2f} ms; "
              f"tritonlite.ray over the 2-hop floor: {one['p50'] - floor2['p50']:.2f} ms")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per case (after 1 s warm-up)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    p.add_argument("--json", type=Path, default=None, help="also write the rows and ratios here")
    args = p.parse_args(argv)
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install -y nghttp2-client")
    print(f"{os.cpu_count()} cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tl-ray-bench-") as tmp:
        repo = Path(tmp) / "models"
        shutil.copytree(ROOT / "examples" / "model_repository" / "add_sub", repo / "add_sub")
        cli = start_cli(repo)  # stays up (idle) while Serve runs: measured before and after it
        try:
            before = measure("tritonlite serve", f"127.0.0.1:{cli.http_port}", args.concurrency, args.seconds)
            rows = run_serve(repo, args.replicas, args.concurrency, args.seconds)
            after = measure("tritonlite serve", f"127.0.0.1:{cli.http_port}", args.concurrency, args.seconds)
        finally:
            cli.stop()
    for b, a in zip(before, after):  # the baseline is the mean of its two runs
        rows.append(dict(b, rps=(b["rps"] + a["rps"]) / 2, p50=(b["p50"] + a["p50"]) / 2, p99=(b["p99"] + a["p99"]) / 2,
                         ok=b["ok"] and a["ok"], runs=[b["rps"], a["rps"]]))
    result = ratios(rows, args.concurrency)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "ratios": result}, indent=1))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
