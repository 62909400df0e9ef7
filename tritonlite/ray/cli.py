"""``tritonlite serve --ray ADDRESS``: deploy a model repository on a running Ray cluster through Ray Serve.

The command connects to the cluster, starts Serve there if it is not running (HTTP proxy on
``--http-address:--http-port``, 127.0.0.1:8000 by default; Serve's gRPC proxy only when
``--grpc-address`` names every interface, since that proxy cannot bind one address), deploys
``tritonlite.ray.app`` with the engine options of the other flags, prints where it listens, and on
SIGINT/SIGTERM deletes the application again. Serve itself keeps running (``serve shutdown`` stops it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from typing import Any

_log = logging.getLogger("tritonlite.cli")

_EVERY_INTERFACE = ("0.0.0.0", "::", "[::]")


def _proxies() -> tuple[Any, Any]:
    """The HTTP and gRPC options Serve on this cluster actually runs with (they may predate this command)."""
    import ray
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    return client.http_config, ray.get(client._controller.get_grpc_config.remote(), timeout=30)


def serve_on_ray(args: argparse.Namespace) -> int:
    """Deploy on the Ray cluster at ``args.ray_address``; block until a signal; delete the application."""
    from tritonlite import cli
    from tritonlite.engine import InferenceEngine

    cli._configure_logging(args)
    if args.workers != 1:
        cli._error("--workers and --ray cannot be combined: give --ray-replicas N")
        return 1
    if args.ray_replicas < 1:
        cli._error(f"--ray-replicas must be at least 1, got {args.ray_replicas}")
        return 1
    if not args.allow_http:
        cli._error("--allow-http false is not supported with --ray (Serve's HTTP proxy carries the application)")
        return 1
    try:
        options = {k: v for k, v in cli.engine_options(args).items() if cli._accepts(InferenceEngine, k)}
    except Exception as exc:  # a bad --cache-config and the like: one line
        cli._error(f"creating server: {cli._error_kind(exc)}{cli._one_line(exc)}")
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signum, _frame: stop.set())

    import ray
    from ray import serve

    import tritonlite.ray as tlray

    try:
        ray.init(address=args.ray_address, log_to_driver=False, configure_logging=False)
    except Exception as exc:  # noqa: BLE001
        cli._error(f"failed to connect to the Ray cluster at {args.ray_address}: {cli._one_line(exc)}")
        return 1
    try:
        want_grpc = args.allow_grpc and args.grpc_address in _EVERY_INTERFACE
        serve.start(http_options={"host": args.http_address, "port": args.http_port},
                    grpc_options=tlray.grpc_options(args.grpc_port) if want_grpc else None)
        application = tlray.app([os.path.abspath(p) for p in args.model_repository], num_replicas=args.ray_replicas,
                                engine_options=options, max_input_size=args.http_max_input_size)
        serve.run(application, name=args.ray_app_name, route_prefix=args.ray_route_prefix, blocking=False)
        http, grpc = _proxies()
        prefix = "" if args.ray_route_prefix == "/" else args.ray_route_prefix.rstrip("/")
        where = f"Ray Serve application '{args.ray_app_name}', {args.ray_replicas} replica(s)"
        if tlray.GRPC_SERVICER_FUNCTION in (grpc.grpc_servicer_functions or []) and grpc.port > 0:
            _log.info("Started GRPCInferenceService at [::]:%d (%s)", grpc.port, where)
        elif args.allow_grpc:
            _log.warning("GRPCInferenceService not started: Serve's gRPC proxy binds every interface; "
                         "pass --grpc-address 0.0.0.0 to start it")
        if args.allow_metrics:
            _log.info("Started Metrics Service at %s:%d%s/metrics (every replica, 'replica' label)",
                      http.host, http.port, prefix)
        _log.info("Started HTTPService at %s:%d%s (%s)", http.host, http.port, prefix, where)
        while not stop.wait(0.5):
            pass
        _log.info("Signal received, deleting Ray Serve application '%s'", args.ray_app_name)
        serve.delete(args.ray_app_name)
    except Exception as exc:  # noqa: BLE001 - a failed deployment is one line, exit status 1
        cli._error(f"deploying on Ray Serve: {cli._one_line(exc)}")
        return 1
    finally:
        ray.shutdown()
    _log.info("Shutdown complete")
    return 0


__all__ = ["serve_on_ray"]
