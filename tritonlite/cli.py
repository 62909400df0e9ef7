"""``tritonlite serve``: Triton's server command line over one :class:`InferenceEngine`.

    tritonlite serve --model-repository /models [--http-port 8000] [--grpc-port 8001] [--metrics-port 8002]
    python -m tritonlite serve ...

Flag names and defaults follow ``tritonserver`` (``src/command_line_parser.cc``); booleans take
``true|false`` (also ``1|0``, ``yes|no``, ``on|off``). SIGINT/SIGTERM stop accepting, drain in-flight
requests (at most ``--exit-timeout-secs``), close the engine and exit 0.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import signal
import sys
import threading
import time
from typing import Any, Sequence

_log = logging.getLogger("tritonlite.cli")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{text}'")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in [0, 65535], got {value}")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected <key>=<value>, got '{text}'")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tritonlite", description="Triton Inference Server's feature set, in-process.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve a model repository over HTTP, gRPC and metrics endpoints")
    add = s.add_argument
    add("--model-repository", "--model-store", dest="model_repository", action="append", required=True, metavar="PATH",
        help="model repository path (repeatable)")
    add("--model-control-mode", choices=("none", "poll", "explicit"), default="none")
    add("--load-model", dest="load_model", action="append", default=[], metavar="NAME",
        help="model to load at startup in explicit mode ('*' = all; repeatable)")
    add("--repository-poll-secs", type=float, default=15.0)
    add("--strict-model-config", type=_bool, default=False, metavar="BOOL")
    add("--strict-readiness", type=_bool, default=True, metavar="BOOL")
    add("--model-load-thread-count", type=int, default=4)
    add("--exit-on-error", type=_bool, default=True, metavar="BOOL",
        help="exit if a model fails to load at startup (Triton's default: true)")
    add("--exit-timeout-secs", type=float, default=30.0, help="how long shutdown waits for in-flight requests")
    add("--id", dest="server_id", default="triton", help="server identifier reported in server metadata")
    # HTTP
    add("--allow-http", type=_bool, default=True, metavar="BOOL")
    add("--http-port", type=_port, default=8000)
    add("--http-address", default="0.0.0.0")
    add("--http-max-input-size", type=int, default=64 * 1024 * 1024)
    # gRPC
    add("--allow-grpc", type=_bool, default=True, metavar="BOOL")
    add("--grpc-port", type=_port, default=8001)
    add("--grpc-address", default="0.0.0.0")
    # shared memory
    add("--allow-client-shm", type=_bool, default=False, metavar="BOOL")
    # metrics
    add("--allow-metrics", type=_bool, default=True, metavar="BOOL")
    add("--allow-gpu-metrics", type=_bool, default=True, metavar="BOOL")
    add("--allow-cpu-metrics", type=_bool, default=True, metavar="BOOL")
    add("--metrics-port", type=_port, default=8002)
    add("--metrics-address", default="0.0.0.0")
    add("--metrics-interval-ms", type=int, default=2000)
    add("--metrics-config", type=_key_value, action="append", default=[], metavar="KEY=VALUE")
    # logging
    add("--log-verbose", type=int, default=0)
    add("--log-info", type=_bool, default=True, metavar="BOOL")
    add("--log-warning", type=_bool, default=True, metavar="BOOL")
    add("--log-error", type=_bool, default=True, metavar="BOOL")
    return parser


def _accepts(fn: Any, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _call_with_supported(fn: Any, *args: Any, **options: Any) -> Any:
    """Call ``fn`` with the keyword options its signature accepts (servers written by other modules)."""
    return fn(*args, **{k: v for k, v in options.items() if _accepts(fn, k)})


class _Fatal(Exception):
    pass


def _configure_logging(args: argparse.Namespace) -> None:
    if args.log_verbose > 0:
        level = logging.DEBUG
    elif args.log_info:
        level = logging.INFO
    elif args.log_warning:
        level = logging.WARNING
    elif args.log_error:
        level = logging.ERROR
    else:
        level = logging.CRITICAL + 1
    logging.basicConfig(level=level, format="%(levelname).1s%(asctime)s %(process)d %(name)s] %(message)s", datefmt="%m%d %H:%M:%S")


def _start_servers(engine: Any, args: argparse.Namespace) -> list[tuple[str, Any]]:
    """gRPC, metrics, then HTTP last: once HTTP answers health checks, every service is up."""
    servers: list[tuple[str, Any]] = []
    try:
        if args.allow_grpc:
            try:
                from tritonlite.grpc import GrpcServer
            except ImportError as exc:
                raise _Fatal(f"gRPC is enabled but the gRPC server is not available ({exc}); install 'tritonlite[grpc]' "
                             "or pass --allow-grpc false") from exc
            grpc = GrpcServer(engine, args.grpc_address, args.grpc_port, allow_shm=args.allow_client_shm)
            grpc.start()
            servers.append(("GRPCInferenceService", grpc))
            print(f"Started GRPCInferenceService at {args.grpc_address}:{grpc.port}", flush=True)
        if args.allow_metrics:
            try:
                from tritonlite.metrics import MetricsServer  # type: ignore[attr-defined]
            except ImportError:
                try:
                    from tritonlite.metrics.server import MetricsServer  # type: ignore[no-redef]
                except ImportError as exc:
                    raise _Fatal(f"metrics are enabled but the metrics server is not available ({exc}); "
                                 "pass --allow-metrics false") from exc
            metrics = MetricsServer(engine, args.metrics_address, args.metrics_port)
            metrics.start()
            servers.append(("Metrics Service", metrics))
            print(f"Started Metrics Service at {args.metrics_address}:{metrics.port}", flush=True)
        if args.allow_http:
            from tritonlite.http import HttpServer

            http = HttpServer(engine, args.http_address, args.http_port, max_input_size=args.http_max_input_size,
                              allow_shm=args.allow_client_shm).start()
            servers.append(("HTTPService", http))
            print(f"Started HTTPService at {args.http_address}:{http.port}", flush=True)
    except BaseException:
        _stop_servers(servers, 1.0)
        raise
    return servers


def _stop_servers(servers: list[tuple[str, Any]], timeout: float) -> None:
    """Stop every server at once (each stops accepting, then drains), all within ``timeout`` seconds."""
    deadline = time.monotonic() + max(0.0, timeout)

    def stop_one(name: str, server: Any) -> None:
        left = max(0.0, deadline - time.monotonic())
        try:
            stop = server.stop
            params = [p for p in inspect.signature(stop).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            stop(left) if params else stop()
        except Exception:
            _log.exception("stopping %s failed", name)

    threads = [threading.Thread(target=stop_one, args=(name, server), name=f"tritonlite.cli.stop.{name}") for name, server in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def serve(args: argparse.Namespace) -> int:
    from tritonlite.engine import InferenceEngine
    from tritonlite.errors import TritonLiteError
    from tritonlite.protocol.shm import release_registry

    _configure_logging(args)
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        engine = _call_with_supported(
            InferenceEngine,
            args.model_repository,
            model_control_mode=args.model_control_mode,
            startup_models=args.load_model,
            strict_model_config=args.strict_model_config,
            repository_poll_secs=args.repository_poll_secs,
            model_load_thread_count=args.model_load_thread_count,
            strict_readiness=args.strict_readiness,
            server_id=args.server_id,
            # the engine owns the metrics registry; MetricsServer only serves its text
            metrics=args.allow_metrics,
            gpu_metrics=args.allow_metrics and args.allow_gpu_metrics,
            cpu_metrics=args.allow_metrics and args.allow_cpu_metrics,
            metrics_interval_ms=int(args.metrics_interval_ms),
            metrics_config=[f"{k}={v}" for k, v in args.metrics_config] or None,
        )
    except TritonLiteError as exc:
        print(f"error: creating server: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        failed = [m for m in engine.repository_index() if m.get("state") == "UNAVAILABLE" and m.get("reason") != "unloaded"]
        for m in failed:
            print(f"error: model '{m['name']}' version {m.get('version', '?')} failed to load: {m.get('reason', '')}",
                  file=sys.stderr, flush=True)
        if failed and args.exit_on_error:
            print("error: creating server: Internal - failed to load all models", file=sys.stderr, flush=True)
            return 1
        try:
            servers = _start_servers(engine, args)
        except _Fatal as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        except OSError as exc:
            print(f"error: failed to start a server: {exc}", file=sys.stderr, flush=True)
            return 1
        while not stop.wait(0.5):
            pass
        sig = received[0] if received else signal.SIGTERM
        print(f"Signal ({int(sig)}) received, shutting down (waiting up to {args.exit_timeout_secs:g}s for in-flight requests)",
              flush=True)
        _stop_servers(servers, args.exit_timeout_secs)
    finally:
        engine.close()
        release_registry(engine)
    print("Shutdown complete", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


__all__ = ["main", "build_parser"]
