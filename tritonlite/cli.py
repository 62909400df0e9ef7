"""``tritonlite serve``: Triton's server command line over one :class:`InferenceEngine`.

    tritonlite serve --model-repository /models [--http-port 8000] [--grpc-port 8001] [--metrics-port 8002]
    python -m tritonlite serve ...

Flag names and defaults follow ``tritonserver`` (``src/command_line_parser.cc``); booleans take
``true|false`` (also ``1|0``, ``yes|no``, ``on|off``). Two defaults differ on purpose: the HTTP, gRPC and
metrics servers bind ``127.0.0.1`` (``--http-address 0.0.0.0`` etc. opens them to the network). SIGINT/SIGTERM
stop accepting, drain in-flight requests (at most ``--exit-timeout-secs``), close the engine and exit 0.

Output talks like ``tritonserver``: log lines in its format (``--log-format default|ISO8601``, plus ``json``),
"successfully loaded 'm' version 1", the model and option tables, "Started HTTPService at ...". Every start-up
failure (bad flag value, bad repository, port in use) is one ``error: ...`` line on stderr and exit status 1.

Adding a flag: put it in its group in :func:`build_parser` (one ``add(...)`` line) and read it in
:func:`serve`; options that only some engine versions accept go through ``_call_with_supported``.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, NoReturn, Sequence

from tritonlite.logformat import LOG_FORMATS, TritonFormatter, table

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


_bool.__name__ = "boolean"  # argparse names the type in "invalid <type> value: 'x'"
_port.__name__ = "port"


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected <key>=<value>, got '{text}'")
    return key, value


class _Parser(argparse.ArgumentParser):
    """A bad flag is one line and exit status 1 (as ``tritonserver``), not argparse's usage dump and 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"error: {message} (see '{self.prog} --help')\n")


def _rate_limit_mode(text: str) -> str:
    value = text.strip().lower()
    if value not in ("execution_count", "off"):
        raise argparse.ArgumentTypeError("invalid argument for --rate-limit")
    return value


def build_parser() -> argparse.ArgumentParser:
    from tritonlite import __version__

    parser = _Parser(prog="tritonlite", description="Triton Inference Server's feature set, in-process.")
    parser.add_argument("--version", action="version", version=f"tritonlite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    add("--http-address", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 = every interface)")
    add("--http-max-input-size", type=int, default=64 * 1024 * 1024)
    # gRPC
    add("--allow-grpc", type=_bool, default=True, metavar="BOOL")
    add("--grpc-port", type=_port, default=8001)
    add("--grpc-address", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 = every interface)")
    add("--grpc-frontend", choices=("native", "grpcio"), default="native",
        help="native: tritonlite's HTTP/2 front on an event loop (default, faster); grpcio: grpcio's server")
    # shared memory
    add("--allow-client-shm", type=_bool, default=False, metavar="BOOL")
    # metrics
    add("--allow-metrics", type=_bool, default=True, metavar="BOOL")
    add("--allow-gpu-metrics", type=_bool, default=True, metavar="BOOL")
    add("--allow-cpu-metrics", type=_bool, default=True, metavar="BOOL")
    add("--metrics-port", type=_port, default=8002)
    add("--metrics-address", default="127.0.0.1", help="bind address (default 127.0.0.1; 0.0.0.0 = every interface)")
    add("--metrics-interval-ms", type=int, default=2000)
    add("--metrics-config", type=_key_value, action="append", default=[], metavar="KEY=VALUE")
    # rate limiter
    add("--rate-limit", type=_rate_limit_mode, default="off", metavar="MODE",
        help="'execution_count' (instances wait for their rate_limiter resources, priority picks) or 'off'")
    add("--rate-limit-resource", dest="rate_limit_resources", action="append", default=[], metavar="NAME:COUNT[:DEVICE]",
        help="count of a rate limiter resource, on DEVICE or every device (repeatable)")
    # response cache (checked in serve(), so a bad setting is a one-line error with exit status 1)
    add("--cache-config", dest="cache_config", action="append", default=[], metavar="<cache>,<key>=<value>",
        help="response cache setting, e.g. local,size=1048576 or redis,host=HOST (repeatable)")
    add("--response-cache-byte-size", dest="response_cache_byte_size", default=None, metavar="BYTES",
        help="DEPRECATED: use --cache-config local,size=BYTES")
    # tracing
    add("--trace-config", dest="trace_config", action="append", default=[], metavar="[MODE,]SETTING=VALUE",
        help="trace setting: level, rate, count, mode; triton,file= / triton,log-frequency=; opentelemetry,url= ... (repeatable)")
    # logging
    add("--log-verbose", type=int, default=0)
    add("--log-info", type=_bool, default=True, metavar="BOOL")
    add("--log-warning", type=_bool, default=True, metavar="BOOL")
    add("--log-error", type=_bool, default=True, metavar="BOOL")
    add("--log-format", choices=LOG_FORMATS, default="default",
        help="default / ISO8601: Triton's line formats; json: one JSON object per line (tritonlite's own)")
    add("--log-file", default="", metavar="PATH", help="append log lines to PATH instead of stderr")
    # worker processes (tritonlite.workers): one engine each, the same ports via SO_REUSEPORT
    add("--workers", "--http-workers", dest="workers", type=int, default=1, metavar="N",
        help="serve from N worker processes (0 = one per CPU core); sequences stay on one worker")
    add("--worker-index", dest="worker_index", type=int, default=None, help=argparse.SUPPRESS)
    add("--worker-dir", dest="worker_dir", default=None, help=argparse.SUPPRESS)
    # Ray Serve (tritonlite.ray): deploy on a running Ray cluster instead of serving from this process
    add("--ray", dest="ray_address", default=None, metavar="ADDRESS",
        help="deploy on the Ray cluster at ADDRESS (e.g. 127.0.0.1:6379, or 'auto') through Ray Serve")
    add("--ray-replicas", type=int, default=1, metavar="N", help="with --ray: engine replicas (default 1)")
    add("--ray-app-name", default="tritonlite", metavar="NAME", help="with --ray: Serve application name")
    add("--ray-route-prefix", default="/", metavar="PREFIX", help="with --ray: HTTP route prefix (default /)")
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
    """A start-up failure: ``serve`` prints ``error: <message>`` and exits 1."""


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
    handler: logging.Handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(TritonFormatter(args.log_format))
    root = logging.getLogger("tritonlite")  # only tritonlite's loggers: a library's debug noise stays out
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _bind_failure(label: str, address: str, port: int, exc: BaseException) -> _Fatal:
    """Triton's wording for a busy port ("failed to start HTTP service: Unavailable - Socket ... already in use")."""
    import errno
    import socket

    in_use = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
    if not in_use and port:
        try:  # the gRPC door reports only "failed to bind": find out whether the port is taken
            with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
                probe.bind((address, port))
        except OSError as probe_exc:
            in_use = probe_exc.errno == errno.EADDRINUSE
    if in_use:
        return _Fatal(f"failed to start {label}: Unavailable - Socket '{address}:{port}' already in use")
    return _Fatal(f"failed to start {label} at {address}:{port}: {_one_line(exc)}")


def _start_one(label: str, address: str, port: int, start: Any) -> Any:
    from tritonlite.errors import TritonLiteError

    try:
        return start()
    except (OSError, TritonLiteError) as exc:
        raise _bind_failure(label, address, port, exc) from exc


def _status(entry: dict[str, Any]) -> str:
    state = entry.get("state", "UNAVAILABLE")
    reason = entry.get("reason", "")
    return f"{state}: {reason}" if reason and state != "READY" else state


def _log_model_table(engine: Any) -> None:
    """Triton's startup table: every model it tried to load, one row per version."""
    rows = [(m["name"], m.get("version", "-"), _status(m)) for m in engine.repository_index()
            if m.get("state") and m.get("reason") != "unloaded"]
    _log.info("", extra={"block": table(("Model", "Version", "Status"), rows)})


def _log_option_table(engine: Any, args: argparse.Namespace) -> None:
    from tritonlite.protocol import server_metadata

    meta = server_metadata(engine)
    options = [("server_id", meta["name"]), ("server_version", meta["version"]),
               ("server_extensions", " ".join(meta["extensions"]))]
    options += [(f"model_repository_path[{i}]", p) for i, p in enumerate(args.model_repository)]
    options += [("model_control_mode", f"MODE_{args.model_control_mode.upper()}")]
    options += [(f"startup_models_{i}", m) for i, m in enumerate(args.load_model)]
    options += [("strict_model_config", str(int(args.strict_model_config))),
                ("strict_readiness", str(int(args.strict_readiness))),
                ("exit_timeout", f"{args.exit_timeout_secs:g}"),
                ("client_shared_memory", str(int(args.allow_client_shm))),
                ("log_format", args.log_format)]
    _log.info("", extra={"block": table(("Option", "Value"), options)})


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
            grpc = GrpcServer(engine, args.grpc_address, args.grpc_port, allow_shm=args.allow_client_shm,
                              frontend=args.grpc_frontend, reuse_port=args.worker_index is not None)
            _start_one("GRPC service", args.grpc_address, args.grpc_port, grpc.start)
            servers.append(("GRPCInferenceService", grpc))
            _log.info("Started GRPCInferenceService at %s:%d", args.grpc_address, grpc.port)
        if args.allow_metrics:
            try:
                from tritonlite.metrics import MetricsServer  # type: ignore[attr-defined]
            except ImportError:
                try:
                    from tritonlite.metrics.server import MetricsServer  # type: ignore[no-redef]
                except ImportError as exc:
                    raise _Fatal(f"metrics are enabled but the metrics server is not available ({exc}); "
                                 "pass --allow-metrics false") from exc
            metrics = _call_with_supported(MetricsServer, engine, args.metrics_address, args.metrics_port,
                                           reuse_port=args.worker_index is not None)
            _start_one("Metrics service", args.metrics_address, args.metrics_port, metrics.start)
            servers.append(("Metrics Service", metrics))
            _log.info("Started Metrics Service at %s:%d", args.metrics_address, metrics.port)
        if args.allow_http:
            from tritonlite.http import HttpServer

            http = HttpServer(engine, args.http_address, args.http_port, max_input_size=args.http_max_input_size,
                              allow_shm=args.allow_client_shm, reuse_port=args.worker_index is not None)
            _start_one("HTTP service", args.http_address, args.http_port, http.start)
            servers.append(("HTTPService", http))
            _log.info("Started HTTPService at %s:%d", args.http_address, http.port)
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
    if args.log_verbose == 0:  # gRPC's C core would print its own bind-failure line before ours
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        received.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        engine = _call_with_supported(InferenceEngine, args.model_repository, **engine_options(args))
    except Exception as exc:  # TritonLiteError or anything else: one line, no traceback
        _error(f"creating server: {_error_kind(exc)}{_one_line(exc)}")
        return 1
    peer_listener = None
    try:
        failed = [m for m in engine.repository_index() if m.get("state") == "UNAVAILABLE" and m.get("reason") != "unloaded"]
        _log_model_table(engine)  # each failure was logged as it happened (E line); the table shows them all
        if failed and args.exit_on_error:
            _error("creating server: Internal - failed to load all models")
            return 1
        _log_option_table(engine, args)
        doors, peer_listener = _worker_view(engine, args)
        from tritonlite.protocol.settings import settings_for

        settings_for(doors).start_log_settings({
            "log_file": args.log_file or "", "log_info": bool(args.log_info), "log_warning": bool(args.log_warning),
            "log_error": bool(args.log_error), "log_verbose_level": int(args.log_verbose), "log_format": args.log_format,
        })
        try:
            servers = _start_servers(doors, args)
        except _Fatal as exc:
            _error(str(exc))
            return 1
        except Exception as exc:
            _error(f"failed to start a server: {_one_line(exc)}")
            return 1
        while not stop.wait(0.5):
            pass
        sig = received[0] if received else signal.SIGTERM
        _log.info("Signal (%d) received, shutting down (waiting up to %gs for in-flight requests)", int(sig),
                  args.exit_timeout_secs)
        _stop_servers(servers, args.exit_timeout_secs)
    finally:
        if peer_listener is not None:
            peer_listener.close()
        engine.close()
        release_registry(engine)
        if peer_listener is not None:
            release_registry(doors)
    _log.info("Shutdown complete")
    return 0


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``InferenceEngine`` keyword arguments the command line gives (``--ray`` sends them to each replica)."""
    return dict(
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
        rate_limit=args.rate_limit,
        rate_limit_resources=args.rate_limit_resources,
        cache_config=_cache_config(args),
        trace_config=args.trace_config or None,
    )


def _worker_view(engine: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    """In a ``--workers`` worker: the engine its doors see (sequences routed, answers summed) and its peer socket."""
    if args.worker_index is None:
        return engine, None
    from tritonlite.workers.peer import PeerListener, WorkerEngine, socket_path
    from tritonlite.workers.supervisor import AUTHKEY_ENV

    workers = args.workers if args.workers > 0 else (os.cpu_count() or 1)
    authkey = os.environ.get(AUTHKEY_ENV, "").encode()
    listener = PeerListener(engine, socket_path(args.worker_dir, args.worker_index), authkey).start()
    return WorkerEngine(engine, args.worker_index, workers, args.worker_dir, authkey), listener


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


_CODE_TEXT = ("Unknown", "Internal", "Not found", "Invalid argument", "Unavailable", "Unsupported", "Already exists",
              "Cancelled")  # TRITONSERVER_ErrorCodeString, indexed by ErrorCode


def _error_kind(exc: BaseException) -> str:
    """Triton's "<Code> - " prefix of an error message (``Internal - ...``); none for non-tritonlite errors."""
    code = getattr(exc, "code", None)
    return f"{_CODE_TEXT[int(code)]} - " if isinstance(code, int) and 0 <= int(code) < len(_CODE_TEXT) else ""


def _cache_config(args: argparse.Namespace) -> dict[str, dict[str, str]] | None:
    """Triton's ``--cache-config`` / deprecated ``--response-cache-byte-size`` as the engine's ``cache_config``."""
    from tritonlite.cache import parse_cli_settings
    from tritonlite.errors import InvalidArgumentError

    if args.response_cache_byte_size is not None:
        if args.cache_config:
            raise InvalidArgumentError(
                "Error: Incompatible flags --response-cache-byte-size and --cache-config both provided. "
                "Please provide one or the other."
            )
        print("Warning: '--response-cache-byte-size' has been deprecated! This will default to the 'local' cache "
              "implementation with the provided byte size for its config. Please use '--cache-config' instead. "
              f"The equivalent --cache-config CLI args would be: '--cache-config=local,size={args.response_cache_byte_size}'",
              file=sys.stderr, flush=True)
        return {"local": {"size": args.response_cache_byte_size}}
    return parse_cli_settings(args.cache_config) or None


def _run_workers(args: argparse.Namespace, argv: Sequence[str]) -> int | None:
    """``--workers N`` (N > 1) in the first process: supervise N workers; None: serve here."""
    if args.worker_index is not None:
        return None
    workers = args.workers if args.workers > 0 else (os.cpu_count() or 1)
    if workers <= 1:
        return None
    ports = [(flag, port) for flag, port, on in (("--http-port", args.http_port, args.allow_http),
             ("--grpc-port", args.grpc_port, args.allow_grpc), ("--metrics-port", args.metrics_port, args.allow_metrics))
             if on and port == 0]
    if ports:
        _error(f"{ports[0][0]} 0 cannot be shared by {workers} workers: give a port number")
        return 1
    from tritonlite.workers.supervisor import run

    return run(list(argv), workers, args.exit_timeout_secs)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "serve" and args.ray_address is not None:
        try:
            from tritonlite.ray.cli import serve_on_ray
        except ImportError as exc:
            _error(f"--ray needs Ray Serve (pip install 'tritonlite[ray]'): {_one_line(exc)}")
            return 1
        return serve_on_ray(args)
    if args.command == "serve":
        supervised = _run_workers(args, argv)
        return serve(args) if supervised is None else supervised
    return 2  # pragma: no cover - argparse rejects unknown commands


__all__ = ["main", "build_parser"]
