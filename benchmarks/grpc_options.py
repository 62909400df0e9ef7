"""Which gRPC server shape costs least per unary ModelInfer (issue 10's gRPC half).

    .venv/bin/python benchmarks/grpc_options.py [--seconds 3]

Each variant runs in its own process pinned to core 0 (taskset); h2load on core 1 sends one
pre-serialised ModelInferRequest (identity_16, batch 1) over one HTTP/2 connection with c streams,
as benchmarks/serving.py does. Variants:
  noop-sync-T   grpcio thread-pool server (T threads), handler returns a fixed response (no decode)
  noop-aio      grpc.aio server, same fixed response
  sync-T        tritonlite's GrpcServer (decode, engine inline, encode), T worker threads
  aio-callback  grpc.aio; decode, engine._submit_with_callback, result back via call_soon_threadsafe
  aio-inline    grpc.aio; decode, engine._submit_request(inline=True) run on the loop thread, encode
Results are ratios to noop-sync-64 from the same run (the machine is shared: absolute numbers are noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import serving  # noqa: E402  (benchmarks/serving.py: repository, bodies, h2load runner)

VARIANTS = ("noop-sync-64", "noop-sync-4", "noop-aio", "sync-64", "sync-8", "aio-callback", "aio-inline")
METHOD = "/inference.GRPCInferenceService/ModelInfer"


def _serve(variant: str, repo: str, port: int) -> None:
    import grpc

    from tritonlite.protos import grpc_service_pb2 as pb

    fixed = pb.ModelInferResponse(model_name="identity_16", model_version="1").SerializeToString()
    stop = asyncio.Event() if "aio" in variant else None
    if variant.startswith("noop-sync"):
        import concurrent.futures

        handler = grpc.unary_unary_rpc_method_handler(lambda req, ctx: fixed)  # bytes in, bytes out
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(int(variant.rsplit("-", 1)[1])))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {"ModelInfer": handler}),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        print("READY", flush=True)
        signal.sigwait({signal.SIGTERM})
        return
    from tritonlite import InferenceEngine

    engine = InferenceEngine(repo)
    if variant.startswith("sync-"):
        from tritonlite.grpc import GrpcServer

        door = GrpcServer(engine, "127.0.0.1", port, worker_threads=int(variant.split("-")[1])).start()
        print("READY", flush=True)
        signal.sigwait({signal.SIGTERM})  # ``door`` stays referenced: a collected grpc.Server stops
        door.stop(0)
        return
    from tritonlite.grpc.codec import decode_infer_request, encode_infer_response
    from tritonlite.grpc.servicer import InferenceServicer

    servicer = InferenceServicer(engine)

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def settle(fut: asyncio.Future, result: object, error: object) -> None:
            if not fut.done():
                fut.set_exception(error) if error is not None else fut.set_result(result)  # type: ignore[arg-type]

        async def noop(req: bytes, ctx: object) -> bytes:
            return fixed

        async def infer(req: bytes, ctx: object) -> bytes:
            decoded = decode_infer_request(pb.ModelInferRequest.FromString(req), servicer.shm)
            core = decoded.request
            if variant == "aio-inline":
                result = engine._submit_request(core, True).result()
            else:
                fut = loop.create_future()
                engine._submit_with_callback(core, lambda r, e, final: loop.call_soon_threadsafe(settle, fut, r, e))
                result = await fut
            return encode_infer_response(result, decoded, servicer._info(core.model_name), servicer.shm).SerializeToString()

        server = grpc.aio.server()
        handler = grpc.unary_unary_rpc_method_handler(noop if variant == "noop-aio" else infer)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {"ModelInfer": handler}),))
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        loop.add_signal_handler(signal.SIGTERM, stop.set)  # type: ignore[union-attr]
        print("READY", flush=True)
        await stop.wait()  # type: ignore[union-attr]
        await server.stop(0.5)

    asyncio.run(main())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--serve", nargs=3, metavar=("VARIANT", "REPO", "PORT"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve[0], args.serve[1], int(args.serve[2]))
        return 0
    body = serving.grpc_body("identity_16")
    headers = ["content-type: application/grpc", "te: trailers"]
    print(f"uptime: {os.popen('uptime').read().strip()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = serving.build_repository(Path(tmp), with_onnx=False)
        for variant in args.variants.split(","):
            port = serving._free_port()
            env = dict(os.environ, PYTHONPATH=str(serving.ROOT), GRPC_VERBOSITY="NONE")
            proc = subprocess.Popen(["taskset", "-c", "0", sys.executable, __file__, "--serve", variant, str(repo), str(port)],
                                    stdout=subprocess.PIPE, text=True, env=env)
            try:
                assert proc.stdout is not None and proc.stdout.readline().strip() == "READY", f"{variant} did not start"
                time.sleep(0.3)
                for conc in (1, 16):
                    r = serving.h2load(f"http://127.0.0.1:{port}{METHOD}", body, headers, conc, args.seconds, "1", False)
                    rows.append((variant, conc, r))
                    print(f"{variant:14s} c={conc:<3d} {r['rps']:9.0f} infer/s  p50 {r['p50']:.3f} ms  p99 {r['p99']:.3f} ms"
                          f"  {'ok' if r['ok'] else 'ERRORS'}", flush=True)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    base = {c: r["rps"] for v, c, r in rows if v == "noop-sync-64"}
    print("\n| variant | c | infer/s | p50 ms | vs noop-sync-64 |\n|---|---|---|---|---|")
    for v, c, r in rows:
        ratio = r["rps"] / base[c] if base.get(c) else float("nan")
        print(f"| {v} | {c} | {r['rps']:,.0f} | {r['p50']:.3f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
