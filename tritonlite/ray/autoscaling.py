"""Autoscaling on the engine's own queue depth (Ray Serve 2.60 custom autoscaling metrics).

Each replica reports ``nv_inference_pending_request_count`` (summed over its models) from
``record_autoscaling_stats``; Serve aggregates it over ``look_back_period_s`` and hands it to
:func:`queue_depth_policy` in ``ctx.aggregated_metrics``. The policy takes Serve's rule (ongoing
requests / ``target_ongoing_requests``) and adds one replica whenever the engines' queues hold more
than ``target_ongoing_requests`` per replica: requests waiting inside the engine (for an instance,
a batch, a sequence slot) are the load a new replica relieves. Serve then clamps to
min/max replicas and applies the up/down-scale delays.
"""

from __future__ import annotations

import math
from typing import Any

PENDING_METRIC = "nv_inference_pending_request_count"


def pending_from_metrics_text(text: str) -> float:
    """Sum of the ``nv_inference_pending_request_count`` samples in a Prometheus text page."""
    total = 0.0
    prefix = PENDING_METRIC
    for line in text.splitlines():
        if line.startswith(prefix) and (len(line) > len(prefix) and line[len(prefix)] in "{ "):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                continue
    return total


def queue_depth_policy(ctx: Any) -> tuple[int, dict[str, Any]]:
    """Desired replica count from ongoing requests and the engines' queue depth."""
    target = float(getattr(ctx.config, "target_ongoing_requests", None) or 2.0)
    metrics = ctx.aggregated_metrics or {}
    pending = sum((metrics.get(PENDING_METRIC) or {}).values())
    ongoing = float(ctx.total_num_requests or 0.0)
    current = int(ctx.current_num_replicas or 0)
    desired = math.ceil(ongoing / target)
    if pending > target * max(current, 1):
        desired = max(desired, current + 1)
    desired = max(ctx.capacity_adjusted_min_replicas, min(ctx.capacity_adjusted_max_replicas, desired))
    return int(desired), dict(ctx.policy_state or {})


__all__ = ["PENDING_METRIC", "pending_from_metrics_text", "queue_depth_policy"]
