"""CPU / host memory metrics from /proc, and GPU metrics through NVML (absent here; real on a GPU machine)."""

from __future__ import annotations

import logging
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from tritonlite import InferenceEngine
from tritonlite.metrics import MetricsRegistry
from tritonlite.metrics.gpu import GpuMetrics
from tritonlite.metrics.host import HostMetrics, Poller, read_cpu_times, read_memory

GPU_FAMILIES = ("nv_gpu_utilization", "nv_gpu_memory_total_bytes", "nv_gpu_memory_used_bytes", "nv_gpu_power_usage",
                "nv_gpu_power_limit", "nv_energy_consumption")


def write_proc(root: Path, user: int, idle: int, total_kb: int = 1000, available_kb: int = 250) -> tuple[str, str]:
    stat, meminfo = root / "stat", root / "meminfo"
    # cpu user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text(f"cpu  {user} 0 0 {idle} 0 0 0 0 0 0\ncpu0 {user} 0 0 {idle} 0 0 0 0 0 0\n")
    meminfo.write_text(f"MemTotal:       {total_kb} kB\nMemFree:         10 kB\nMemAvailable:    {available_kb} kB\n")
    return str(stat), str(meminfo)


def test_cpu_metrics_present_with_no_labels(repo: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo) as engine:
        m = scrape(engine)
        for name in ("nv_cpu_utilization", "nv_cpu_memory_total_bytes", "nv_cpu_memory_used_bytes"):
            assert m.type(name) == "gauge"
            assert m.labelsets(name) == [{}]
        total, used = m.value("nv_cpu_memory_total_bytes"), m.value("nv_cpu_memory_used_bytes")
        assert total == pytest.approx(read_memory()[0], rel=0.01) and 0 < used <= total
        assert 0.0 <= m.value("nv_cpu_utilization") <= 1.0


def test_cpu_utilization_from_proc_stat_deltas(tmp_path: Path) -> None:
    stat, meminfo = write_proc(tmp_path, user=100, idle=900)
    assert read_cpu_times(stat) == (100, 900)
    host = HostMetrics(stat, meminfo)
    assert (host.memory_total, host.memory_used) == (1000 * 1024, 750 * 1024)
    assert host.utilization == 0.0  # no interval yet
    write_proc(tmp_path, user=160, idle=940, available_kb=500)  # +60 busy, +40 idle
    host.poll()
    assert host.utilization == pytest.approx(0.6)
    assert host.memory_used == 500 * 1024
    lines: list[str] = []
    host.render(lines)
    assert "nv_cpu_utilization 0.6" in lines and "nv_cpu_memory_used_bytes 512000" in lines


def test_poll_thread_refreshes_every_interval_and_is_joined(tmp_path: Path, no_thread_leak) -> None:  # type: ignore[no-untyped-def]
    stat, meminfo = write_proc(tmp_path, user=0, idle=100)
    host = HostMetrics(stat, meminfo)
    poller = Poller([host.poll], interval_ms=10)
    poller.start()
    try:
        write_proc(tmp_path, user=50, idle=150)
        deadline = time.monotonic() + 10
        while host.utilization == 0.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert host.utilization == pytest.approx(0.5)
        assert "tritonlite.metrics.poll" in no_thread_leak()
    finally:
        poller.stop()
    assert "tritonlite.metrics.poll" not in no_thread_leak()


def test_engine_owns_and_joins_its_poll_thread(repo: Path, no_thread_leak) -> None:  # type: ignore[no-untyped-def]
    with InferenceEngine(repo, metrics_interval_ms=20) as engine:
        assert engine.metrics_registry.interval_ms == 20
        assert "tritonlite.metrics.poll" in no_thread_leak()
    assert no_thread_leak() == []


def _has_gpu() -> bool:
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            return pynvml.nvmlDeviceGetCount() > 0
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return False


def test_gpu_metrics_absent_without_a_gpu(repo: Path, scrape, caplog) -> None:  # type: ignore[no-untyped-def]
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    with caplog.at_level(logging.INFO, logger="tritonlite.metrics"):
        with InferenceEngine(repo) as engine:
            m = scrape(engine)
    assert not [name for name in m.families if name.startswith("nv_gpu") or name == "nv_energy_consumption"]
    gpu_lines = [r for r in caplog.records if "GPU metrics" in r.getMessage()]
    assert len(gpu_lines) == 1 and gpu_lines[0].levelno == logging.INFO, [r.getMessage() for r in caplog.records]
    # asked not to, it does not even look
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tritonlite.metrics"):
        InferenceEngine(repo, gpu_metrics=False).close()
    assert not [r for r in caplog.records if "GPU" in r.getMessage()]


class _FakeNvml(types.ModuleType):
    """Just the pynvml calls GpuMetrics makes, for two GPUs."""

    def __init__(self, fail_init: bool = False) -> None:
        super().__init__("pynvml")
        self.fail_init = fail_init
        self.energy = {0: 5_000_000, 1: 100}
        self.shutdowns = 0

    def nvmlInit(self) -> None:  # noqa: N802
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802
        return i

    def nvmlDeviceGetUUID(self, h: int) -> str:  # noqa: N802
        return f"GPU-0000000{h}-aaaa"

    def nvmlDeviceGetUtilizationRates(self, h: int) -> types.SimpleNamespace:  # noqa: N802
        return types.SimpleNamespace(gpu=42 + h, memory=0)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> types.SimpleNamespace:  # noqa: N802
        return types.SimpleNamespace(total=80 * 2**30, used=(h + 1) * 2**30, free=0)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:  # noqa: N802
        if h == 1:
            raise RuntimeError("Not Supported")
        return 123_456  # mW

    def nvmlDeviceGetPowerManagementLimit(self, h: int) -> int:  # noqa: N802
        return 700_000

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:  # noqa: N802
        return self.energy[h]  # mJ


def test_gpu_metrics_through_nvml(monkeypatch, scrape, caplog) -> None:  # type: ignore[no-untyped-def]
    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    registry = MetricsRegistry(cpu=False, interval_ms=60_000)
    try:
        fake.energy[0] += 2_500  # 2.5 J later
        with caplog.at_level(logging.WARNING, logger="tritonlite.metrics"):
            registry.gpu.poll()  # type: ignore[union-attr]
            registry.gpu.poll()  # type: ignore[union-attr]
        m = scrape(registry.render())
        uuids = ["GPU-00000000-aaaa", "GPU-00000001-aaaa"]
        for name in GPU_FAMILIES:
            assert m.type(name) == ("counter" if name == "nv_energy_consumption" else "gauge")
            assert [lab["gpu_uuid"] for lab in m.labelsets(name)] == uuids
        assert m.value("nv_gpu_utilization", gpu_uuid=uuids[0]) == 0.42
        assert m.value("nv_gpu_memory_total_bytes", gpu_uuid=uuids[1]) == 80 * 2**30
        assert m.value("nv_gpu_memory_used_bytes", gpu_uuid=uuids[1]) == 2 * 2**30
        assert m.value("nv_gpu_power_usage", gpu_uuid=uuids[0]) == 123.456
        assert m.value("nv_gpu_power_usage", gpu_uuid=uuids[1]) == 0  # a failed reading reports 0 ...
        assert len([r for r in caplog.records if "power usage" in r.getMessage()]) == 1  # ... and warns once
        assert m.value("nv_gpu_power_limit", gpu_uuid=uuids[0]) == 700
        assert m.value("nv_energy_consumption", gpu_uuid=uuids[0]) == 2.5  # J since start
        assert m.value("nv_energy_consumption", gpu_uuid=uuids[1]) == 0
    finally:
        registry.close()
    assert fake.shutdowns == 1


def test_gpu_metrics_respect_cuda_visible_devices(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    gpu = GpuMetrics()
    assert [d.uuid for d in gpu.devices] == ["GPU-00000001-aaaa"]
    gpu.close()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-00000000")
    gpu = GpuMetrics()
    assert [d.uuid for d in gpu.devices] == ["GPU-00000000-aaaa"]
    gpu.close()


def test_nvml_failing_to_start_is_one_log_line(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml(fail_init=True))
    with caplog.at_level(logging.INFO, logger="tritonlite.metrics"):
        gpu = GpuMetrics()
    assert gpu.devices == []
    assert [r.getMessage() for r in caplog.records] == [
        "GPU metrics are not available: NVML could not start (NVML Shared Library Not Found)"]
    lines: list[str] = []
    gpu.render(lines)
    assert lines == []


@pytest.mark.gpu
def test_real_gpu_metrics(repo: Path, scrape) -> None:  # type: ignore[no-untyped-def]
    if not _has_gpu():
        pytest.skip("needs an NVIDIA GPU and nvidia-ml-py")
    import pynvml  # type: ignore[import-not-found]

    with InferenceEngine(repo, metrics_interval_ms=100) as engine:
        m = scrape(engine)
        pynvml.nvmlInit()
        try:
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            expected = {str(pynvml.nvmlDeviceGetUUID(h)) for h in handles}
            total = {str(pynvml.nvmlDeviceGetUUID(h)): pynvml.nvmlDeviceGetMemoryInfo(h).total for h in handles}
        finally:
            pynvml.nvmlShutdown()
        for name in GPU_FAMILIES:
            assert {lab["gpu_uuid"] for lab in m.labelsets(name)} <= expected, name
            assert m.labelsets(name), name
        for lab in m.labelsets("nv_gpu_memory_total_bytes"):
            uuid = lab["gpu_uuid"]
            assert uuid.startswith("GPU-")
            assert m.value("nv_gpu_memory_total_bytes", gpu_uuid=uuid) == total[uuid]
            assert 0 < m.value("nv_gpu_memory_used_bytes", gpu_uuid=uuid) <= total[uuid]
            assert 0.0 <= m.value("nv_gpu_utilization", gpu_uuid=uuid) <= 1.0
            assert m.value("nv_gpu_power_limit", gpu_uuid=uuid) > 0
            assert m.value("nv_gpu_power_usage", gpu_uuid=uuid) > 0
            first = m.value("nv_energy_consumption", gpu_uuid=uuid)
            assert first >= 0
        time.sleep(0.5)  # a few refreshes at 100 ms
        later = scrape(engine)
        for lab in later.labelsets("nv_energy_consumption"):
            assert later.value("nv_energy_consumption", **lab) >= m.value("nv_energy_consumption", **lab)
        assert any(t.name == "tritonlite.metrics.poll" for t in threading.enumerate())
