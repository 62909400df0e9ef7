"""Where the HTTP server's time goes per request, without sockets: the door and the engine in one process.

    .venv/bin/python benchmarks/http_path.py                          # every case, CPU µs per request
    .venv/bin/python benchmarks/http_path.py --profile identity_16:http-binary   # plus cProfile of the loop thread

The real ``HttpApp`` and ``HttpConnection`` of ``tritonlite serve`` over the serving benchmark's model
repository (``benchmarks/serving.py``), but each connection's transport is an in-memory object: the
bytes h2load would send are fed to ``data_received`` of ``--concurrency`` connections, the event loop
runs until every one has written its response, and that repeats. What is left is exactly the Python
work a request costs on the server (parse, route, decode, engine, model, encode, write) and the
thread hand-offs between the event loop and the engine's threads — no kernel, no client. The figure
is process CPU time per request (all threads), which a loaded machine disturbs far less than wall
time. ``--profile`` adds cProfile of the event-loop thread (the door's share), as µs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import serving  # noqa: E402  (the same models and request bodies as the socket benchmark)

CASES = [
    ("identity_16", "http-binary", 16),
    ("identity_16", "http-json", 16),
    ("identity_4096", "http-json", 16),
    ("add_sub", "http-binary", 1),
    ("identity_16", "http-binary", 1),
]


class MemoryTransport:
    """What ``HttpConnection`` writes to; counts complete responses (one write each on the infer path)."""

    def __init__(self, done: Any) -> None:
        self.done = done
        self.closing = False

    def write(self, data: Any) -> None:
        self.done()

    def writelines(self, parts: Any) -> None:
        self.done()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def raw_request(model: str, proto: str) -> bytes:
    if proto == "http-json":
        body, headers = serving.http_json_body(model), ""
    else:
        body, ihcl = serving.http_binary_body(model)
        headers = f"Inference-Header-Content-Length: {ihcl}\r\n"
    # the headers h2load sends with -d (method, host, user-agent, accept, content-length)
    return (f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: h2load nghttp2/1.52.0\r\n"
            f"Accept: */*\r\n{headers}Content-Length: {len(body)}\r\n\r\n").encode() + body


def run_case(engine: Any, model: str, proto: str, conc: int, requests: int, profile: bool) -> dict[str, float]:
    from tritonlite.http.connection import HttpConnection
    from tritonlite.http.routes import HttpApp
    from tritonlite.http.server import DEFAULT_INLINE_COMPUTE_US

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = HttpApp(engine, inline_compute_us=DEFAULT_INLINE_COMPUTE_US)
    raw = raw_request(model, proto)
    state = {"left": 0, "event": None}

    def done() -> None:
        state["left"] -= 1
        if state["left"] == 0:
            state["event"].set()

    conns = []
    registry: set = set()
    for _ in range(conc):
        try:
            c = HttpConnection(app, 64 << 20, registry, {})
        except TypeError:  # the door before issue 10 (to measure the baseline)
            c = HttpConnection(app, 64 << 20, registry)
        c.connection_made(MemoryTransport(done))  # type: ignore[arg-type]
        conns.append(c)

    async def rounds(n: int) -> None:
        for _ in range(n):
            state["left"] = conc
            state["event"] = asyncio.Event()
            for c in conns:
                c.data_received(raw)
            await state["event"].wait()

    rounds_n = max(1, requests // conc)
    loop.run_until_complete(rounds(max(1, 200 // conc)))  # warm-up
    prof = cProfile.Profile() if profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    loop.run_until_complete(rounds(rounds_n))
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    loop.close()
    n = rounds_n * conc
    out = {"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6, "n": n}
    if prof:
        stats = pstats.Stats(prof)
        print(f"\ncProfile of the event-loop thread, {model} {proto} c={conc}: tottime per request (µs), top 30")
        rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:30]  # type: ignore[attr-defined]
        for (file, line, fn), (cc, nc, tt, ct, _) in rows:
            print(f"  {tt / n * 1e6:7.2f} self {ct / n * 1e6:7.2f} cum  {nc / n:5.1f} calls  {Path(file).name}:{line} {fn}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--profile", nargs="*", default=None, metavar="MODEL:PROTOCOL[:C]", help="cProfile these cases (all when empty)")
    p.add_argument("--cases", nargs="*", default=None, metavar="MODEL:PROTOCOL:C")
    args = p.parse_args(argv)
    from tritonlite import InferenceEngine

    cases = CASES if not args.cases else [(c.split(":")[0], c.split(":")[1], int(c.split(":")[2])) for c in args.cases]
    wanted = None if args.profile is None else {tuple(x.split(":")[:2]) for x in args.profile}
    with tempfile.TemporaryDirectory(prefix="tl-http-path-") as tmp:
        repo = serving.build_repository(Path(tmp) / "models", with_onnx=False)
        with InferenceEngine(repo) as engine:
            print(f"{'model':14s} {'protocol':11s} {'c':>3s}  {'cpu µs/req':>10s}  {'wall µs/req':>11s}")
            for model, proto, conc in cases:
                n = args.requests if model != "identity_4096" or proto != "http-json" else max(conc, args.requests // 20)
                prof = wanted is not None and (not wanted or (model, proto) in wanted)
                r = run_case(engine, model, proto, conc, n, prof)
                print(f"{model:14s} {proto:11s} {conc:3d}  {r['cpu_us']:10.1f}  {r['wall_us']:11.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
