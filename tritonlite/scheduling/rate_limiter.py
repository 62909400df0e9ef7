"""Triton's rate limiter (``--rate-limit execution_count``): instances run only when their resources are free.

One :class:`RateLimiter` per engine, shared by every model. Each non-passive instance of a loaded
model gets an :class:`InstanceGate`; :class:`~tritonlite.scheduling.runner.BatchRunner` passes the
gate before ``execute`` and the scheduler tells the runner when the instance goes idle. The rules
are core's ``rate_limiter.cc``:

* an instance asks for ``instance_group.rate_limiter.resources`` on its device (``global: true``:
  one pool for the whole engine);
* the count available of a resource is the largest count any loaded instance asks for, unless
  resources are given explicitly (``--rate-limit-resource NAME:COUNT[:DEVICE]``): then those counts
  are the only ones, a resource not listed has none, and an instance asking for more than exists
  fails its model's load;
* waiting instances are served in order of ``executions * max(priority, 1)`` (lowest first, ties
  in arrival order), so priority 1 runs twice as often as priority 2 under contention; the head
  of that order waits for its resources even if one behind it would fit (no starvation).

An instance that finishes a batch and has the next one at hand keeps its resources until it asks
again (:meth:`InstanceGate.acquire` hands them back and re-queues it in one step, as Triton
re-stages a released instance before allocating), so it competes by priority with those waiting.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from typing import Any, Iterable, Sequence

from tritonlite.errors import InvalidArgumentError

#: resource-map keys of core's ``RateLimiter::ResourceMap`` besides device ids
GLOBAL = -2
PER_DEVICE = -1

RATE_LIMIT_MODES = ("off", "execution_count")


def parse_resource(spec: str | Sequence[Any]) -> tuple[str, int, int]:
    """``NAME:COUNT`` or ``NAME:COUNT:DEVICE`` (Triton's ``--rate-limit-resource``) or a tuple -> (name, count, device).

    ``device == -1`` means every device.
    """
    if isinstance(spec, str):
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0]:
            raise InvalidArgumentError(
                "--rate-limit-resource option format is '<resource_name>:<count>:<device>' or "
                f"'<resource_name>:<count>'. Got {spec}"
            )
        name, rest = parts[0], parts[1:]
    else:
        items = list(spec)
        if len(items) not in (2, 3) or not isinstance(items[0], str) or not items[0]:
            raise InvalidArgumentError(f"a rate limiter resource is (name, count) or (name, count, device), got {spec!r}")
        name, rest = items[0], items[1:]
    try:
        numbers = [int(x) for x in rest]
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"rate limiter resource '{name}': count and device must be integers, got {rest}") from None
    count = numbers[0]
    device = numbers[1] if len(numbers) == 2 else PER_DEVICE
    if count < 0:
        raise InvalidArgumentError(f"rate limiter resource '{name}': count must be >= 0, got {count}")
    if device < PER_DEVICE:
        raise InvalidArgumentError(f"rate limiter resource '{name}': device must be >= 0, got {device}")
    return name, count, device


class InstanceGate:
    """One instance's place in the rate limiter: what it needs, how often it ran, whether it holds resources."""

    __slots__ = ("limiter", "model_name", "instance_name", "needs", "priority", "executions", "held", "_granted")

    def __init__(self, limiter: "RateLimiter", model_name: str, instance_name: str,
                 needs: dict[int, dict[str, int]], priority: int) -> None:
        self.limiter = limiter
        self.model_name = model_name
        self.instance_name = instance_name
        self.needs = needs
        self.priority = max(int(priority), 1)  # core: "If specified as 0, the priority is still treated as 1"
        self.executions = 0
        self.held = False
        self._granted = threading.Lock()
        self._granted.acquire()  # released by the allocator, taken by the waiting instance thread

    def acquire(self) -> None:
        """Wait until this instance may execute (hand back resources it still holds first)."""
        self.limiter._stage(self)
        self._granted.acquire()

    def release(self) -> None:
        """The instance went idle: give its resources back."""
        if self.held:
            self.limiter._release(self)

    def __repr__(self) -> str:
        return f"InstanceGate({self.model_name}/{self.instance_name}, priority={self.priority}, executions={self.executions})"


class RateLimiter:
    """The engine's rate limiter; ``mode="off"`` (Triton's default) gates nothing and costs nothing."""

    def __init__(self, mode: str = "off", resources: Iterable[str | Sequence[Any]] = ()) -> None:
        if mode not in RATE_LIMIT_MODES:
            raise InvalidArgumentError(f"invalid argument for --rate-limit: '{mode}' (expected one of {list(RATE_LIMIT_MODES)})")
        self.mode = mode
        self.enabled = mode == "execution_count"
        #: explicit counts: device (or PER_DEVICE) -> name -> count; a repeated entry keeps the smaller count (core)
        self._explicit: dict[int, dict[str, int]] = {}
        for spec in resources:
            name, count, device = parse_resource(spec)
            per = self._explicit.setdefault(device, {})
            per[name] = min(per.get(name, count), count)
        self._lock = threading.Lock()
        self._gates: dict[InstanceGate, None] = {}
        self._available: dict[int, dict[str, int]] = {}
        self._allocated: dict[int, dict[str, int]] = {}
        self._staged: list[tuple[int, int, InstanceGate]] = []
        self._order = itertools.count()

    # ---- registration (model load / unload) ---------------------------------------------------------
    def register(self, model_name: str, instances: Sequence[tuple[str, int, Any]]) -> list[InstanceGate]:
        """Add one model version's instances, each ``(name, device_id, ModelRateLimiter config)``.

        Raises InvalidArgumentError naming the model and the resource when the counts cannot
        schedule every instance (nothing is registered then).
        """
        gates = []
        for name, device, rl in instances:
            needs: dict[int, dict[str, int]] = {}
            priority = 1
            if rl is not None:
                for res in rl.resources:
                    key = GLOBAL if getattr(res, "global") else int(device)
                    needs.setdefault(key, {})[res.name] = int(res.count)
                priority = int(rl.priority)
            gates.append(InstanceGate(self, model_name, name, needs, priority))
        with self._lock:
            for g in gates:
                self._gates[g] = None
            try:
                self._available = self._compute_available()
            except InvalidArgumentError as exc:
                for g in gates:
                    del self._gates[g]
                self._available = self._compute_available()
                raise InvalidArgumentError(f"rate limiter of model '{model_name}': {exc.message}") from None
        return gates

    def unregister(self, gates: Iterable[InstanceGate]) -> None:
        """Remove an unloaded version's instances (their threads have stopped) and recompute the counts."""
        with self._lock:
            for g in gates:
                if g.held:
                    self._free_locked(g)
                self._staged = [e for e in self._staged if e[2] is not g]
                heapq.heapify(self._staged)
                self._gates.pop(g, None)
            try:
                self._available = self._compute_available()
            except InvalidArgumentError:  # removing instances never needs more than before
                pass
            self._allocate_locked()

    def _compute_available(self) -> dict[int, dict[str, int]]:
        """Core ``ComputeResourceLimits`` + ``ParseAndValidate*``: max asked per resource, checked against explicit counts."""
        most: dict[int, dict[str, int]] = {}
        for g in self._gates:
            for key, per in g.needs.items():
                target = most.setdefault(key, {})
                for name, count in per.items():
                    if target.get(name, -1) < count:
                        target[name] = count
        for name in most.get(GLOBAL, {}):
            for key, per in most.items():
                if key != GLOBAL and name in per:
                    raise InvalidArgumentError(
                        f'Resource "{name}" is present as both global and device-specific resource in the model configuration.'
                    )
        if not self._explicit:
            return most
        for key, per in most.items():
            for name, needed in per.items():
                if key == GLOBAL:  # the device of an explicit entry is ignored for global resources
                    have = max((p[name] for p in self._explicit.values() if name in p), default=0)
                else:
                    have = max(self._explicit.get(key, {}).get(name, 0), self._explicit.get(PER_DEVICE, {}).get(name, 0))
                if have < needed:
                    raise InvalidArgumentError(
                        f'Resource count for "{name}" is limited to {have} which will prevent scheduling of one or more '
                        f"model instances, the minimum required count is {needed}"
                    )
                per[name] = have
        return most

    # ---- the gate -----------------------------------------------------------------------------------
    def _stage(self, gate: InstanceGate) -> None:
        with self._lock:
            if gate.held:
                self._free_locked(gate)
            heapq.heappush(self._staged, (gate.executions * gate.priority, next(self._order), gate))
            self._allocate_locked()

    def _release(self, gate: InstanceGate) -> None:
        with self._lock:
            if gate.held:
                self._free_locked(gate)
                self._allocate_locked()

    def _free_locked(self, gate: InstanceGate) -> None:
        gate.held = False
        gate.executions += 1
        for key, per in gate.needs.items():
            used = self._allocated[key]
            for name, count in per.items():
                used[name] -= count

    def _allocate_locked(self) -> None:
        """Grant the head of the staged order while its resources fit (core ``AttemptAllocation``)."""
        staged = self._staged
        while staged:
            gate = staged[0][2]
            for key, per in gate.needs.items():
                cap = self._available.get(key, {})
                used = self._allocated.get(key, {})
                for name, count in per.items():
                    if used.get(name, 0) + count > cap.get(name, 0):
                        return
            heapq.heappop(staged)
            for key, per in gate.needs.items():
                used = self._allocated.setdefault(key, {})
                for name, count in per.items():
                    used[name] = used.get(name, 0) + count
            gate.held = True
            gate._granted.release()

    # ---- introspection ------------------------------------------------------------------------------
    def resources(self) -> dict[str, dict[str, int]]:
        """Available counts per device (``"GLOBAL"`` or the device id as a string) for logs and tests."""
        with self._lock:
            return {("GLOBAL" if k == GLOBAL else str(k)): dict(v) for k, v in sorted(self._available.items()) if v}

    def waiting(self) -> list[str]:
        """Model names of the instances waiting for resources, in the order they would be served."""
        with self._lock:
            return [g.model_name for _, _, g in sorted(self._staged, key=lambda e: e[:2])]

    def in_use(self) -> dict[str, dict[str, int]]:
        """Counts allocated right now, in the shape of :meth:`resources`."""
        with self._lock:
            return {("GLOBAL" if k == GLOBAL else str(k)): {n: c for n, c in v.items() if c}
                    for k, v in sorted(self._allocated.items()) if any(v.values())}


def gate_config(config: Any, group_name: str) -> Any:
    """The ``rate_limiter`` message of the instance group named ``group_name`` (None when it has none)."""
    for group in config.instance_group:
        if group.name == group_name:
            return group.rate_limiter if group.HasField("rate_limiter") else None
    return None


__all__ = ["RateLimiter", "InstanceGate", "parse_resource", "gate_config", "RATE_LIMIT_MODES", "GLOBAL", "PER_DEVICE"]
