"""Which replicas of a deployment the ingress may use, shared by its router thread and its event loop.

The request router (on Serve's router thread) publishes the replicas it can route to; the ingress
(on the replica's event loop) reads them to address every replica for model control and metrics.
A replica that joins after a model-control call (a replacement, or autoscaling) starts from the
repository and must first replay that control log: until the ingress marks it ``synced``, the
router gives it only calls addressed to it by id. With no control call yet, a joining replica is
synced at once.
"""

from __future__ import annotations

import threading
from typing import Callable


class Membership:
    """Routable and synced replica ids of one deployment, in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routable: tuple[str, ...] | None = None
        self._synced: set[str] = set()
        self._control_version = 0
        self._listener: Callable[[], None] | None = None

    def publish(self, unique_ids: list[str]) -> None:
        """The router's replica set changed (called on the router thread)."""
        with self._lock:
            self._routable = tuple(sorted(unique_ids))
            self._synced &= set(self._routable)
            if self._control_version == 0:
                self._synced.update(self._routable)
            listener = self._listener
        if listener is not None:
            listener()

    def routable(self) -> tuple[str, ...] | None:
        """Replicas the router can deliver to; None before its first update."""
        with self._lock:
            return self._routable

    def unsynced(self) -> list[str]:
        with self._lock:
            return [uid for uid in self._routable or () if uid not in self._synced]

    def is_synced(self, unique_id: str) -> bool:
        with self._lock:
            return unique_id in self._synced

    def mark_synced(self, unique_id: str) -> None:
        with self._lock:
            if self._routable is not None and unique_id in self._routable:
                self._synced.add(unique_id)

    def set_control_version(self, version: int) -> None:
        with self._lock:
            self._control_version = version

    def set_listener(self, listener: Callable[[], None] | None) -> None:
        """``listener()`` runs (on the router thread) after every change of the replica set."""
        with self._lock:
            self._listener = listener


_all: dict[str, Membership] = {}
_all_lock = threading.Lock()


def membership(app_name: str, deployment_name: str) -> Membership:
    """This process's membership record of ``deployment_name`` in application ``app_name``."""
    key = f"{app_name}#{deployment_name}"
    with _all_lock:
        found = _all.get(key)
        if found is None:
            found = _all[key] = Membership()
        return found


__all__ = ["Membership", "membership"]
