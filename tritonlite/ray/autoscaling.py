"""Autoscaling on the engine's own queue depth (Ray Serve 2.60 custom autoscaling policies and metrics).

Each replica reports ``nv_inference_pending_request_count`` (summed over its models: requests
waiting inside the engine for an instance, a batch or a sequence slot) from
``record_autoscaling_stats``; Serve averages it over ``look_back_period_s`` and hands it to
:class:`QueueDepthPolicy` in ``ctx.aggregated_metrics``. The policy keeps Serve's own rule
(ongoing requests / ``target_ongoing_requests``) and adds the engines' view:

- queues longer than ``target_pending_requests`` per replica: at least one replica more;
- anything still queued: never fewer replicas than now;
- queues empty: Serve's rule alone (which scales down when the requests stop).

Serve then applies ``upscale_delay_s``/``downscale_delay_s``, the scaling factors and
min/max replicas to what the policy returns.
"""

from __future__ import annotations

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


class QueueDepthPolicy:
    """Serve custom autoscaling policy (``policy_function``; ``policy_kwargs``: ``target_pending_requests``)."""

    def __init__(self, target_pending_requests: float = 1.0) -> None:
        if not target_pending_requests > 0:
            raise ValueError(f"target_pending_requests must be > 0, got {target_pending_requests!r}")
        self.target_pending_requests = float(target_pending_requests)

    def __call__(self, ctx: Any) -> tuple[float, dict[str, Any]]:
        current = int(ctx.current_num_replicas or 0)
        state = dict(ctx.policy_state or {})
        if current == 0:
            return ctx.target_num_replicas, state
        target = float(ctx.config.get_target_ongoing_requests())
        desired = float(ctx.total_num_requests or 0.0) / target
        pending = sum((((ctx.aggregated_metrics or {}).get(PENDING_METRIC)) or {}).values())
        if pending > self.target_pending_requests * current:
            desired = max(desired, current + 1)
        elif pending > 0:
            desired = max(desired, current)
        state["tritonlite_pending"] = pending
        return desired, state


__all__ = ["PENDING_METRIC", "QueueDepthPolicy", "pending_from_metrics_text"]
