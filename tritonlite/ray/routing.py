"""Which replica gets a request: sequences stick to one replica, control messages reach a named one.

Serve's own router (power of two choices) is right for stateless inference but would scatter a
sequence's requests over replicas, each with its own sequence batcher state. ``CorrelationRouter``
reads the ``_tritonlite_route`` keyword of a handle call:

- ``"seq:<correlation id>"``: rendezvous hashing of the id over the running replicas, so every
  request of a sequence lands on the same replica while the replica set is unchanged (a replica
  that dies or is added moves only the sequences hashed to it, like Triton losing an instance);
- ``"replica:<unique id>"``: exactly that replica (model control and metrics reach each one);
- absent: Serve's power-of-two-choices routing.
"""

from __future__ import annotations

import hashlib
from typing import Any, Optional

from ray.serve._private.request_router.pow_2_router import PowerOfTwoChoicesRequestRouter
from ray.serve.request_router import PendingRequest, RunningReplica

ROUTE_KWARG = "_tritonlite_route"


def sequence_route(correlation_id: Any) -> str | None:
    """The route of a request with this correlation id (None: not a sequence request)."""
    if correlation_id is None or correlation_id == 0 or correlation_id == "":
        return None
    return f"seq:{correlation_id}"


def replica_route(unique_id: str) -> str:
    return f"replica:{unique_id}"


def rendezvous_pick(key: str, unique_ids: list[str]) -> str:
    """The id with the highest hash of (key, id): stable, and moves few keys when ids change."""
    return max(unique_ids, key=lambda uid: hashlib.blake2b(f"{key}|{uid}".encode(), digest_size=8).digest())


class CorrelationRouter(PowerOfTwoChoicesRequestRouter):
    """Serve request router: sequence affinity by correlation id, targeted control calls.

    Serve's FIFO mixin hands a chosen replica to the pending request whose metadata matches
    (the multiplexed model id) before the oldest one, so routed calls carry their route as their
    ``multiplexed_model_id`` too: a replica picked for a route goes to a request of that route.
    """

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: Optional[PendingRequest] = None,
    ) -> list[list[RunningReplica]]:
        route = pending_request.kwargs.get(ROUTE_KWARG) if pending_request is not None else None
        if not isinstance(route, str) or not candidate_replicas:
            return await super().choose_replicas(candidate_replicas, pending_request)
        by_id = {r.replica_id.unique_id: r for r in candidate_replicas}
        kind, _, value = route.partition(":")
        if kind == "replica":
            chosen = by_id.get(value)
            return [[chosen]] if chosen is not None else []
        return [[by_id[rendezvous_pick(value, sorted(by_id))]]]


__all__ = ["CorrelationRouter", "ROUTE_KWARG", "rendezvous_pick", "replica_route", "sequence_route"]
