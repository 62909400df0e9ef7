"""GPU metrics through NVML (``pynvml`` from the ``nvidia-ml-py`` package, imported lazily).

Per GPU, labelled ``gpu_uuid``: ``nv_gpu_utilization`` (0–1), ``nv_gpu_memory_total_bytes``,
``nv_gpu_memory_used_bytes``, ``nv_gpu_power_usage`` and ``nv_gpu_power_limit`` (W) and the counter
``nv_energy_consumption`` (J since the engine started). Triton reads the same fields through DCGM.

Without the package, the driver or a GPU, the families are absent and one INFO line says why; nothing
raises. A reading that fails reports 0, as Triton does, with one warning per GPU and field.
``CUDA_VISIBLE_DEVICES`` (indices in PCI-bus order, or ``GPU-`` UUID prefixes) limits the GPUs shown.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from tritonlite.metrics._text import family, format_labels, format_value

_log = logging.getLogger("tritonlite.metrics")

FAMILIES = (
    ("nv_gpu_utilization", "gauge", "GPU utilization rate [0.0 - 1.0)"),
    ("nv_gpu_memory_total_bytes", "gauge", "GPU total memory, in bytes"),
    ("nv_gpu_memory_used_bytes", "gauge", "GPU used memory, in bytes"),
    ("nv_gpu_power_usage", "gauge", "GPU power usage in watts"),
    ("nv_gpu_power_limit", "gauge", "GPU power management limit in watts"),
    ("nv_energy_consumption", "counter", "GPU energy consumption in joules since the Triton Server started"),
)


@dataclass
class GpuReading:
    uuid: str
    handle: Any
    labels: str
    values: dict[str, float] = field(default_factory=lambda: {name: 0.0 for name, _, _ in FAMILIES})
    first_energy_mj: int | None = None
    warned: set[str] = field(default_factory=set)


def _visible(index: int, uuid: str, visible: str | None) -> bool:
    if visible is None:
        return True
    for item in (v.strip() for v in visible.split(",")):
        if not item:
            continue
        if item.isdigit() and int(item) == index:
            return True
        if item.startswith("GPU-") and uuid.startswith(item):
            return True
    return False


class GpuMetrics:
    """NVML readings of the visible GPUs; ``devices`` is empty when there are none."""

    def __init__(self) -> None:
        self.devices: list[GpuReading] = []
        self._nvml: Any = None
        try:
            import pynvml  # type: ignore[import-not-found]
        except ImportError:
            _log.info("GPU metrics are not available: nvidia-ml-py is not installed (pip install 'tritonlite[gpu]')")
            return
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            _log.info("GPU metrics are not available: NVML could not start (%s)", exc)
            return
        self._nvml = pynvml
        try:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            for i in range(pynvml.nvmlDeviceGetCount()):
                handle = pynvml.nvmlDeviceGetHandleByIndex(i)
                uuid = pynvml.nvmlDeviceGetUUID(handle)
                uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
                if _visible(i, uuid, visible):
                    self.devices.append(GpuReading(uuid, handle, format_labels({"gpu_uuid": uuid})))
        except Exception as exc:
            self.devices = []
            self._shutdown()
            _log.info("GPU metrics are not available: NVML could not list the GPUs (%s)", exc)
            return
        if not self.devices:
            self._shutdown()
            _log.info("GPU metrics are not available: no GPU is visible to this process")
            return
        _log.info("Collecting metrics for %d GPU(s): %s", len(self.devices), ", ".join(d.uuid for d in self.devices))
        self.poll()

    def _read(self, dev: GpuReading, name: str, fn: Any) -> Any:
        try:
            value = fn(dev.handle)
        except Exception as exc:
            if name not in dev.warned:
                dev.warned.add(name)
                _log.warning("Unable to get %s for GPU %s: %s", name, dev.uuid, exc)
            return None
        dev.warned.discard(name)
        return value

    def poll(self) -> None:
        nv = self._nvml
        if nv is None:
            return
        for dev in self.devices:
            v = dev.values
            util = self._read(dev, "utilization", nv.nvmlDeviceGetUtilizationRates)
            v["nv_gpu_utilization"] = util.gpu * 0.01 if util is not None else 0.0
            mem = self._read(dev, "memory", nv.nvmlDeviceGetMemoryInfo)
            v["nv_gpu_memory_total_bytes"] = float(mem.total) if mem is not None else 0.0
            v["nv_gpu_memory_used_bytes"] = float(mem.used) if mem is not None else 0.0
            power = self._read(dev, "power usage", nv.nvmlDeviceGetPowerUsage)  # mW
            v["nv_gpu_power_usage"] = power / 1000.0 if power is not None else 0.0
            limit = self._read(dev, "power limit", nv.nvmlDeviceGetPowerManagementLimit)  # mW
            v["nv_gpu_power_limit"] = limit / 1000.0 if limit is not None else 0.0
            energy = self._read(dev, "energy consumption", nv.nvmlDeviceGetTotalEnergyConsumption)  # mJ
            if energy is not None:
                if dev.first_energy_mj is None:
                    dev.first_energy_mj = int(energy)
                v["nv_energy_consumption"] = max(0, int(energy) - dev.first_energy_mj) / 1000.0

    def render(self, lines: list[str]) -> None:
        if not self.devices:
            return
        for name, kind, help_text in FAMILIES:
            family(lines, name, kind, help_text, [f"{name}{d.labels} {format_value(d.values[name])}" for d in self.devices])

    def _shutdown(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except Exception:
            pass
        self._nvml = None

    def close(self) -> None:
        if self._nvml is not None:
            self._shutdown()
        self.devices = []


__all__ = ["FAMILIES", "GpuMetrics"]
