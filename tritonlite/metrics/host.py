"""CPU utilisation and host memory (``nv_cpu_*``), read from ``/proc`` as Triton's core does.

Utilisation is the busy share of the aggregate ``cpu`` line of ``/proc/stat`` between two polls
(busy = user + nice + system + irq + softirq + steal; idle = idle + iowait). Memory "used" is
``MemTotal - MemAvailable`` from ``/proc/meminfo``. Also the poll thread that refreshes these and the
GPU readings every ``metrics_interval_ms``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Sequence

from tritonlite.metrics._text import family, format_value

_log = logging.getLogger("tritonlite.metrics")

_BUSY = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal
_IDLE = (3, 4)  # idle iowait


def read_cpu_times(path: str = "/proc/stat") -> tuple[int, int]:
    """``(busy, idle)`` jiffies of the aggregate CPU line."""
    with open(path, encoding="ascii") as f:
        line = f.readline()
    if not line.startswith("cpu "):
        raise ValueError(f"no aggregate CPU line in {path}")
    fields = [int(x) for x in line.split()[1:]]
    fields += [0] * (8 - len(fields))
    return sum(fields[i] for i in _BUSY), sum(fields[i] for i in _IDLE)


def read_memory(path: str = "/proc/meminfo") -> tuple[int, int]:
    """``(total, used)`` bytes; used = MemTotal - MemAvailable."""
    info: dict[str, int] = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and name in ("MemTotal", "MemAvailable"):
                info[name] = int(parts[0]) * 1024
    total, available = info["MemTotal"], info["MemAvailable"]
    if available > total:
        raise ValueError("MemAvailable is larger than MemTotal")
    return total, total - available


class HostMetrics:
    """``nv_cpu_utilization``, ``nv_cpu_memory_total_bytes``, ``nv_cpu_memory_used_bytes`` (no labels)."""

    def __init__(self, stat_path: str = "/proc/stat", meminfo_path: str = "/proc/meminfo") -> None:
        self._stat = stat_path
        self._meminfo = meminfo_path
        self.utilization = 0.0
        self.memory_total = 0
        self.memory_used = 0
        self._last: tuple[int, int] | None = None
        self.available = Path(stat_path).exists() and Path(meminfo_path).exists()
        if not self.available:
            _log.info("CPU metrics are not available: %s or %s is missing", stat_path, meminfo_path)
            return
        try:
            self._last = read_cpu_times(self._stat)
            self.memory_total, self.memory_used = read_memory(self._meminfo)
        except (OSError, ValueError, KeyError) as exc:
            _log.warning("CPU metrics may not be available: %s", exc)

    def poll(self) -> None:
        if not self.available:
            return
        try:
            now = read_cpu_times(self._stat)
            if self._last is not None:
                busy = max(0, now[0] - self._last[0])
                idle = max(0, now[1] - self._last[1])
                self.utilization = busy / (busy + idle) if busy + idle else 0.0
            self._last = now
        except (OSError, ValueError):
            self.utilization = 0.0
        try:
            self.memory_total, self.memory_used = read_memory(self._meminfo)
        except (OSError, ValueError, KeyError):
            self.memory_total = self.memory_used = 0

    def render(self, lines: list[str]) -> None:
        if not self.available:
            return
        family(lines, "nv_cpu_utilization", "gauge", "CPU utilization rate [0.0 - 1.0]",
               [f"nv_cpu_utilization {format_value(self.utilization)}"])
        family(lines, "nv_cpu_memory_total_bytes", "gauge", "CPU total memory (RAM), in bytes",
               [f"nv_cpu_memory_total_bytes {self.memory_total}"])
        family(lines, "nv_cpu_memory_used_bytes", "gauge", "CPU used memory (RAM), in bytes",
               [f"nv_cpu_memory_used_bytes {self.memory_used}"])


class Poller:
    """One named thread calling each ``poll`` every ``interval_ms``; ``stop`` joins it."""

    def __init__(self, polls: Sequence[Callable[[], None]], interval_ms: int, name: str = "tritonlite.metrics.poll") -> None:
        self._polls = list(polls)
        self._interval = max(1, int(interval_ms)) / 1000.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            for poll in self._polls:
                try:
                    poll()
                except Exception:  # a failing reading must not end the thread
                    _log.exception("metrics poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


__all__ = ["HostMetrics", "Poller", "read_cpu_times", "read_memory"]
