"""Which replica gets a request: sequences stick to one replica, control messages reach a named one.

Serve's default router (power of two choices) is right for stateless inference but would scatter a
sequence's requests over replicas, each with its own sequence batcher state. ``CorrelationRouter``
reads the ``_tritonlite_route`` keyword of a handle call:

- ``"seq:<correlation id>"``: the replica the sequence was first given to, for as long as that
  replica runs; a new sequence (or one whose replica died) gets one by rendezvous hashing over the
  running replicas. Sticky assignment means a replica that joins (autoscaling, a replacement)
  takes only new sequences and never moves a live one, like Triton keeping a sequence on its slot;
  ``"seq-end:<id>"`` routes the same way and then forgets the id;
- ``"replica:<unique id>"``: exactly that replica (model control and metrics reach each one);
- absent: power of two choices, preferring replicas on this node (Serve's ``LocalityMixin``).

The router publishes the replicas it can route to (:mod:`tritonlite.ray.membership`), so the
ingress addresses exactly the replicas Serve will deliver to (a starting or dead replica is not in
the set), and gives inference only to replicas synced with the model-control log.
A replica a routing task picks goes to the oldest pending request that replica may serve: one
routed to it, or an unrouted one. (Serve's own hand-off matches by request id, which the calls an
ingress makes while serving one request share, or else gives the replica to the oldest request,
whatever its route.) That hand-off is the one override of a private ``RequestRouter`` method here;
``tritonlite[ray]`` pins Ray 2.60.
"""

from __future__ import annotations

import hashlib
import random
from collections import OrderedDict
from typing import Any, Optional

from ray.serve.request_router import LocalityMixin, PendingRequest, ReplicaID, RequestRouter, RunningReplica

from tritonlite.ray.membership import membership

ROUTE_KWARG = "_tritonlite_route"
_DECIDED = "tritonlite_replica"  # the replica a sequence request was given, kept on its routing context
MAX_TRACKED_SEQUENCES = 1 << 16


def sequence_route(correlation_id: Any, end: bool = False) -> str | None:
    """The route of a request with this correlation id (None: not a sequence request)."""
    if correlation_id is None or correlation_id == 0 or correlation_id == "" or isinstance(correlation_id, bool):
        return None
    return f"{'seq-end' if end else 'seq'}:{correlation_id}"


def replica_route(unique_id: str) -> str:
    return f"replica:{unique_id}"


def rendezvous_pick(key: str, unique_ids: list[str]) -> str:
    """The id with the highest hash of (key, id): stable, and moves few keys when ids change."""
    return max(unique_ids, key=lambda uid: hashlib.blake2b(f"{key}|{uid}".encode(), digest_size=8).digest())


class CorrelationRouter(LocalityMixin, RequestRouter):
    """Serve request router: sticky sequence affinity by correlation id, targeted control calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sequences: OrderedDict[str, str] = OrderedDict()  # correlation key -> replica unique id
        self._members = membership(self._deployment_id.app_name, self._deployment_id.name)

    def _publish(self) -> None:
        self._members.publish([r.unique_id for r in self.curr_replicas])

    def update_replicas(self, replicas: list[RunningReplica]) -> None:
        super().update_replicas(replicas)
        self._publish()

    def on_replica_actor_died(self, replica_id: ReplicaID) -> None:
        super().on_replica_actor_died(replica_id)
        self._publish()

    def _may_serve(self, pending_request: PendingRequest, unique_id: str) -> bool:
        route = pending_request.kwargs.get(ROUTE_KWARG)
        if not isinstance(route, str):
            return self._members.is_synced(unique_id)
        kind, _, value = route.partition(":")
        if kind == "replica":
            return value == unique_id
        return getattr(pending_request.routing_context, _DECIDED, None) == unique_id

    def _fulfill_next_pending_request(self, replica: RunningReplica, request_metadata: Any = None) -> None:
        """Give ``replica`` to the oldest pending request it may serve (see the module docstring)."""
        unique_id = replica.replica_id.unique_id
        queue = self._pending_requests_to_fulfill
        while queue and queue[0].future.done():
            queue.popleft()
        for pending in list(queue):
            if pending.future.done() or not self._may_serve(pending, unique_id):
                continue
            queue.remove(pending)
            self._cancel_routing_task_for_pending_request(pending)
            self._record_queue_wait_time(pending)
            pending.future.set_result(replica)
            self._remove_pending_request_from_indices(pending)
            return

    def _sequence_replica(self, key: str, end: bool, by_id: dict[str, RunningReplica]) -> RunningReplica:
        sequences = self._sequences
        uid = sequences.get(key)
        if uid not in by_id:
            uid = rendezvous_pick(key, sorted(by_id))
        if end:
            sequences.pop(key, None)
        else:
            sequences[key] = uid
            sequences.move_to_end(key)
            while len(sequences) > MAX_TRACKED_SEQUENCES:
                sequences.popitem(last=False)
        return by_id[uid]

    async def choose_replicas(
        self,
        candidate_replicas: list[RunningReplica],
        pending_request: Optional[PendingRequest] = None,
    ) -> list[list[RunningReplica]]:
        route = pending_request.kwargs.get(ROUTE_KWARG) if pending_request is not None else None
        kind, _, value = route.partition(":") if isinstance(route, str) else ("", "", "")
        if kind == "replica":
            chosen = [r for r in candidate_replicas if r.replica_id.unique_id == value]
        else:
            synced = [r for r in candidate_replicas if self._members.is_synced(r.replica_id.unique_id)]
            if kind in ("seq", "seq-end") and synced and pending_request is not None:
                decided = getattr(pending_request.routing_context, _DECIDED, None)
                by_id = {r.replica_id.unique_id: r for r in synced}
                replica = by_id.get(decided) if decided else None
                if replica is None:
                    replica = self._sequence_replica(value, kind == "seq-end", by_id)
                    setattr(pending_request.routing_context, _DECIDED, replica.replica_id.unique_id)
                chosen = [replica]
            elif synced:
                ids = self.apply_locality_routing(pending_request)
                pool = [r for r in synced if r.replica_id in ids] or synced
                return [random.sample(pool, min(2, len(pool)))]
            else:
                chosen = []
        if pending_request is not None:
            # When the one right replica is busy, or not known or synced yet, the router must back
            # off (sleep) between tries: without it the loop spins and never takes the replica update.
            pending_request.routing_context.should_backoff = True
        return [chosen] if chosen else []


__all__ = ["CorrelationRouter", "MAX_TRACKED_SEQUENCES", "ROUTE_KWARG", "rendezvous_pick", "replica_route",
           "sequence_route"]
