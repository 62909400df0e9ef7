"""tritonlite on Ray Serve: one model repository served by N replicas, each owning an engine.

    from ray import serve
    import tritonlite.ray

    serve.start(http_options={"host": "127.0.0.1"}, grpc_options=tritonlite.ray.grpc_options(9000))
    handle = serve.run(tritonlite.ray.app("models/", num_replicas=2), route_prefix="/")
    # tritonclient.http against Serve's HTTP port (8000), tritonclient.grpc against 9000, or Ray-native:
    outputs = handle.infer.remote("add_sub", {"INPUT0": a, "INPUT1": b}).result()

Modules: ``replica`` (one engine per replica, the doors' handlers), ``ingress`` (HTTP, gRPC and the
handle API; model control and its log; metrics), ``routing`` (the Serve request router: sequences,
targeted calls), ``membership`` (which replicas the ingress may use), ``grpc_proxy`` (the service on
Serve's gRPC proxy), ``autoscaling`` (the queue-depth policy), ``metrics`` (the merged page), ``cli``
(``tritonlite serve --ray``). Needs the ``ray`` extra (``pip install 'tritonlite[ray]'``, Ray 2.60).
See the README's "Scale out".
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

try:
    from ray import serve
    from ray.serve.config import AutoscalingConfig, RequestRouterConfig
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("tritonlite.ray needs Ray Serve: pip install 'tritonlite[ray]'") from exc

from tritonlite.ray.autoscaling import PENDING_METRIC, QueueDepthPolicy
from tritonlite.ray.grpc_proxy import GRPC_SERVICER_FUNCTION
from tritonlite.ray.ingress import RETRYABLE, TritonIngress
from tritonlite.ray.replica import TritonReplica
from tritonlite.ray.routing import CorrelationRouter

REPLICA_DEPLOYMENT = "TritonReplica"
INGRESS_DEPLOYMENT = "TritonIngress"

QUEUE_DEPTH_POLICY = "tritonlite.ray.autoscaling:QueueDepthPolicy"


def _autoscaling(config: Mapping[str, Any] | AutoscalingConfig | None) -> dict[str, Any] | None:
    """Serve's autoscaling config with :class:`QueueDepthPolicy` as the default policy; the extra
    key ``target_pending_requests`` (default 1) becomes the policy's argument."""
    if config is None:
        return None
    doc = config.model_dump(exclude_unset=True) if isinstance(config, AutoscalingConfig) else dict(config)
    target = doc.pop("target_pending_requests", 1.0)
    doc.setdefault("policy", {"policy_function": QUEUE_DEPTH_POLICY,
                              "policy_kwargs": {"target_pending_requests": float(target)}})
    return doc


def app(
    model_repository: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    num_replicas: int | str | None = 1,
    autoscaling_config: Mapping[str, Any] | AutoscalingConfig | None = None,
    ray_actor_options: Mapping[str, Any] | None = None,
    engine_options: Mapping[str, Any] | None = None,
    max_ongoing_requests: int = 64,
    max_input_size: int = 64 * 1024 * 1024,
    control_timeout_s: float = 120.0,
    request_timeout_s: float = 300.0,
    replica_options: Mapping[str, Any] | None = None,
    ingress_options: Mapping[str, Any] | None = None,
) -> serve.Application:
    """A Serve application serving ``model_repository``: bind it with ``serve.run(app, route_prefix="/")``.

    ``num_replicas`` engines (or ``autoscaling_config``, whose default policy scales on the engines'
    ``nv_inference_pending_request_count``, see :mod:`tritonlite.ray.autoscaling`);
    ``ray_actor_options`` per replica (e.g. ``num_cpus``); ``engine_options`` are
    ``InferenceEngine`` keyword arguments; ``replica_options`` more ``serve.deployment`` options of
    the replicas (e.g. ``health_check_period_s``), ``ingress_options`` those of the ingress. A request a replica does not answer within
    ``request_timeout_s`` (model control: ``control_timeout_s``) gets the retryable error. The
    repository path must be readable at the same path on every node.
    """
    roots = [model_repository] if isinstance(model_repository, (str, os.PathLike)) else list(model_repository)
    paths = [os.path.abspath(os.fspath(r)) for r in roots]
    scaling = _autoscaling(autoscaling_config)
    replica = serve.deployment(
        TritonReplica,
        name=REPLICA_DEPLOYMENT,
        num_replicas="auto" if scaling is not None and num_replicas in (None, 1, "auto") else num_replicas,
        autoscaling_config=scaling,
        ray_actor_options=dict(ray_actor_options or {"num_cpus": 0}),
        max_ongoing_requests=max_ongoing_requests,
        request_router_config=RequestRouterConfig(request_router_class=CorrelationRouter),
        **dict(replica_options or {}),
    )
    ingress = serve.deployment(
        TritonIngress,
        name=INGRESS_DEPLOYMENT,
        num_replicas=1,
        ray_actor_options={"num_cpus": 0},
        max_ongoing_requests=max(256, 4 * max_ongoing_requests),
        **dict(ingress_options or {}),
    )
    return ingress.bind(replica.bind(paths, dict(engine_options or {}), max_input_size), control_timeout_s,
                        request_timeout_s)


def grpc_options(port: int = 9000, **options: Any) -> dict[str, Any]:
    """Serve ``gRPCOptions`` (for ``serve.start(grpc_options=...)``) that put KServe v2 gRPC
    (``inference.GRPCInferenceService``) on Serve's gRPC proxy at ``port``. Serve's gRPC proxy
    binds every interface (``[::]``); it has no host option."""
    return {"port": int(port), "grpc_servicer_functions": [GRPC_SERVICER_FUNCTION], **options}


def build_app(args: Mapping[str, Any]) -> serve.Application:
    """Application builder for ``serve run tritonlite.ray:build_app model_repository=PATH num_replicas=2``
    (or a Serve config file's ``import_path`` with ``args``)."""
    options = dict(args)
    repo = options.pop("model_repository")
    if "num_replicas" in options and str(options["num_replicas"]).isdigit():
        options["num_replicas"] = int(options["num_replicas"])
    return app(repo, **options)


__all__ = ["CorrelationRouter", "GRPC_SERVICER_FUNCTION", "INGRESS_DEPLOYMENT", "PENDING_METRIC", "QUEUE_DEPTH_POLICY",
           "QueueDepthPolicy", "REPLICA_DEPLOYMENT", "RETRYABLE", "TritonIngress", "TritonReplica", "app", "build_app",
           "grpc_options"]
