"""Client shared memory (SPEC §2.6): a registry of system (POSIX ``/dev/shm``) and CUDA IPC regions.

One :class:`SharedMemoryRegistry` per engine (``registry_for(engine)``), shared by the HTTP and gRPC
doors. System regions are ``mmap``-ed once at registration; :meth:`SharedMemoryRegistry.read`
returns a zero-copy ``memoryview`` into the mapping, :meth:`~SharedMemoryRegistry.write` copies an
output in. CUDA regions need cuda-python and a GPU; without them registration fails with a clear
"CUDA shared memory is not available: ..." error. Messages follow Triton's ``shared_memory_manager.cc``.

Tensor helpers shared by both doors: :func:`input_from_params` (read an input whose parameters name a
region), :func:`output_target` (parse an output's region parameters) and :func:`write_output`.
"""

from __future__ import annotations

import mmap
import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tritonlite.errors import (
    AlreadyExistsError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
)
from tritonlite.protocol.tensors import from_raw, to_raw

SHM_ROOT = "/dev/shm"
RESERVED_KEY_PREFIX = "triton_python_backend_shm_region_"
CUDA_IPC_HANDLE_SIZE = 64
#: the refusal when a server runs without client shared memory (off by default, unlike Triton)
SHM_DISABLED = (
    "Client shared memory is disabled on this server. Enable it with '--allow-client-shm true' "
    "(tritonlite serve) or allow_shm=True (tritonlite.http.HttpServer / tritonlite.grpc.GrpcServer)."
)


@dataclass(eq=False)
class SystemRegion:
    """A registered system shared memory region: bytes [offset, offset+byte_size) of shm object ``key``."""

    name: str
    key: str
    offset: int
    byte_size: int
    _map: mmap.mmap | None = field(default=None, repr=False)
    _start: int = 0  # where the region begins inside ``_map`` (mmap offsets must be page aligned)
    kind: str = "system"

    def view(self) -> memoryview:
        if self._map is None:
            raise NotFoundError(f"Unable to find shared memory region: '{self.name}'")
        return memoryview(self._map)[self._start : self._start + self.byte_size]

    def release(self) -> None:
        m, self._map = self._map, None
        if m is not None:
            try:
                m.close()
            except BufferError:
                # arrays of an in-flight request still view it; the mapping goes when they do
                pass

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key, "offset": self.offset, "byte_size": self.byte_size}


@dataclass(eq=False)
class CudaRegion:
    """A registered CUDA IPC region (device memory opened with ``cudaIpcOpenMemHandle``)."""

    name: str
    device_id: int
    byte_size: int
    raw_handle: bytes
    _ptr: int = 0
    _cuda: Any = field(default=None, repr=False)
    kind: str = "cuda"

    def read(self, offset: int, byte_size: int) -> memoryview:
        buf = bytearray(byte_size)
        if byte_size:
            self._cuda.copy(self.device_id, _addr_of(buf), self._ptr + offset, byte_size)
        return memoryview(buf)

    def write(self, offset: int, data: Any) -> None:
        src = np.frombuffer(data, dtype=np.uint8) if len(memoryview(data).cast("B")) else None
        if src is not None:
            src = np.ascontiguousarray(src)
            self._cuda.copy(self.device_id, self._ptr + offset, src.ctypes.data, src.nbytes)

    def release(self) -> None:
        if self._ptr and self._cuda is not None:
            ptr, self._ptr = self._ptr, 0
            self._cuda.close(self.device_id, ptr)

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "device_id": self.device_id, "byte_size": self.byte_size}


def _addr_of(buf: bytearray) -> int:
    return np.frombuffer(buf, dtype=np.uint8).ctypes.data


class _Cuda:
    """The few CUDA runtime calls CUDA shm needs, through cuda-python (imported lazily)."""

    def __init__(self) -> None:
        try:
            import cuda.bindings.runtime as cudart  # type: ignore[import-not-found]
        except ImportError:
            try:
                from cuda import cudart  # type: ignore[import-not-found,no-redef]
            except ImportError as exc:
                raise InvalidArgumentError(
                    "CUDA shared memory is not available: cuda-python is not installed (pip install 'tritonlite[gpu]')"
                ) from exc
        self.rt = cudart
        err, count = cudart.cudaGetDeviceCount()
        if err != cudart.cudaError_t.cudaSuccess or count < 1:
            raise InvalidArgumentError("CUDA shared memory is not available: no CUDA GPU is visible (GPUs not supported)")
        self.count = count

    def _check(self, res: Any, what: str) -> Any:
        err = res[0]
        if err != self.rt.cudaError_t.cudaSuccess:
            _, text = self.rt.cudaGetErrorString(err)
            raise InvalidArgumentError(f"{what}: {text.decode() if isinstance(text, bytes) else text}")
        return res[1] if len(res) == 2 else res[1:]

    def open(self, raw_handle: bytes, device_id: int) -> int:
        import ctypes

        rt = self.rt
        if not 0 <= device_id < self.count:
            raise InvalidArgumentError(f"CUDA shared memory is not available: invalid device id {device_id}")
        self._check(rt.cudaSetDevice(device_id), "failed to set the CUDA device")
        handle = rt.cudaIpcMemHandle_t()
        ctypes.memmove(handle.getPtr(), raw_handle, CUDA_IPC_HANDLE_SIZE)
        ptr = self._check(rt.cudaIpcOpenMemHandle(handle, rt.cudaIpcMemLazyEnablePeerAccess), "failed to register shared memory region: invalid args")
        return int(ptr)

    def copy(self, device_id: int, dst: int, src: int, n: int) -> None:
        rt = self.rt
        self._check(rt.cudaSetDevice(device_id), "failed to set the CUDA device")
        self._check(rt.cudaMemcpy(dst, src, n, rt.cudaMemcpyKind.cudaMemcpyDefault), "CUDA shared memory copy failed")

    def close(self, device_id: int, ptr: int) -> None:
        try:
            self.rt.cudaSetDevice(device_id)
            self.rt.cudaIpcCloseMemHandle(ptr)
        except Exception:  # pragma: no cover - best effort at unregister
            pass


def _shm_path(key: str) -> str:
    # shm_open("/name") is /dev/shm/name; glibc strips the leading slashes
    name = key.lstrip("/")
    if not name or "/" in name or name in (".", ".."):
        raise InvalidArgumentError(f"Unable to open shared memory region: '{key}'")
    return os.path.join(SHM_ROOT, name)


class SharedMemoryRegistry:
    """Registered client shared memory regions of one engine (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._regions: dict[str, SystemRegion | CudaRegion] = {}
        self._cuda: _Cuda | None = None
        #: set in a ``--workers`` worker: repeats a (un)registration on the other workers, whose
        #: registries then hold the same regions, so any connection's requests can name them
        self.fan_out: Callable[..., Any] | None = None

    # ---- changes, here and on the other workers ---------------------------------------------------------
    def register_system(self, name: str, key: str, offset: int, byte_size: int) -> None:
        self._register_system(name, key, offset, byte_size)
        self._repeat(("register_system", name, key, offset, byte_size), ("unregister_system", name))

    def unregister_system(self, name: str = "") -> None:
        self._unregister(name, "system")
        self._repeat(("unregister_system", name))

    def register_cuda(self, name: str, raw_handle: bytes, device_id: int, byte_size: int) -> None:
        self._register_cuda(name, raw_handle, device_id, byte_size)
        self._repeat(("register_cuda", name, bytes(raw_handle), device_id, byte_size), ("unregister_cuda", name))

    def unregister_cuda(self, name: str = "") -> None:
        self._unregister(name, "cuda")
        self._repeat(("unregister_cuda", name))

    def apply_local(self, change: str, *args: Any) -> None:
        """Apply a change another worker repeated here (not repeated further)."""
        local = {"register_system": self._register_system, "unregister_system": lambda name: self._unregister(name, "system"),
                 "register_cuda": self._register_cuda, "unregister_cuda": lambda name: self._unregister(name, "cuda")}
        if change not in local:
            raise InvalidArgumentError(f"unknown shared memory change '{change}'")
        local[change](*args)

    def _repeat(self, change: tuple[Any, ...], undo: tuple[Any, ...] | None = None) -> None:
        if self.fan_out is None:
            return
        try:
            self.fan_out(*change)
        except Exception:
            if undo is not None:  # a registration holds everywhere or nowhere
                self.apply_local(*undo)
                try:
                    self.fan_out(*undo)
                except Exception:  # noqa: BLE001 - the first error is the one to report
                    pass
            raise

    # ---- system ---------------------------------------------------------------------------------------
    def _register_system(self, name: str, key: str, offset: int, byte_size: int) -> None:
        if key.lstrip("/").startswith(RESERVED_KEY_PREFIX):
            raise InvalidArgumentError(
                f"cannot register shared memory region '{name}' with key '{key}' as the key contains the reserved prefix "
                f"'{RESERVED_KEY_PREFIX}'"
            )
        offset, byte_size = int(offset), int(byte_size)
        if offset < 0 or byte_size < 0:
            raise InvalidArgumentError(f"failed to register shared memory region '{name}': invalid args")
        with self._lock:
            if name in self._regions:
                raise AlreadyExistsError(f"shared memory region '{name}' already in manager")
            path = _shm_path(key)
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError:
                raise InternalError(f"Unable to open shared memory region: '{key}'") from None
            try:
                size = os.fstat(fd).st_size
                if offset + byte_size > size:
                    raise InvalidArgumentError(f"failed to register shared memory region '{name}': invalid args")
                start = offset % mmap.ALLOCATIONGRANULARITY
                length = start + byte_size
                mapped = None
                if length > 0:
                    try:
                        mapped = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset - start)
                    except (OSError, ValueError) as exc:
                        raise InvalidArgumentError(f"failed to register shared memory region '{name}': {exc}") from None
            finally:
                os.close(fd)
            region = SystemRegion(name, key, offset, byte_size, mapped, start)
            self._regions[name] = region

    def system_status(self, name: str = "") -> list[dict[str, Any]]:
        return self._status(name, "system")

    # ---- CUDA -----------------------------------------------------------------------------------------
    def _register_cuda(self, name: str, raw_handle: bytes, device_id: int, byte_size: int) -> None:
        if len(raw_handle) != CUDA_IPC_HANDLE_SIZE:
            raise InvalidArgumentError(
                f"'raw_handle' must be a {CUDA_IPC_HANDLE_SIZE}-byte cudaIpcMemHandle_t, got {len(raw_handle)} bytes"
            )
        with self._lock:
            if name in self._regions:
                raise AlreadyExistsError(f"shared memory region '{name}' already in manager")
            if self._cuda is None:
                self._cuda = _Cuda()
            ptr = self._cuda.open(bytes(raw_handle), int(device_id))
            self._regions[name] = CudaRegion(name, int(device_id), int(byte_size), bytes(raw_handle), ptr, self._cuda)

    def cuda_status(self, name: str = "") -> list[dict[str, Any]]:
        return self._status(name, "cuda")

    # ---- shared ---------------------------------------------------------------------------------------
    def _status(self, name: str, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            if not name:
                return [r.status() for r in self._regions.values() if r.kind == kind]
            region = self._regions.get(name)
            if region is None:
                raise NotFoundError(f"Unable to find {'cuda' if kind == 'cuda' else 'system'} shared memory region: '{name}'")
            if region.kind != kind:
                if region.kind == "cuda":
                    raise NotFoundError(f"The region named '{name}' is registered as CUDA shared memory, not system shared memory")
                raise NotFoundError(f"The region named '{name}' is registered as system shared memory, not CUDA shared memory")
            return [region.status()]

    def _unregister(self, name: str, kind: str) -> None:
        # Triton: an unknown name (or one of the other kind) is a no-op success
        with self._lock:
            names = [n for n, r in self._regions.items() if r.kind == kind] if not name else [name]
            dropped = []
            for n in names:
                region = self._regions.get(n)
                if region is not None and region.kind == kind:
                    dropped.append(self._regions.pop(n))
        for region in dropped:
            region.release()

    def get(self, name: str) -> SystemRegion | CudaRegion:
        with self._lock:
            region = self._regions.get(name)
        if region is None:
            raise NotFoundError(f"Unable to find shared memory region: '{name}'")
        return region

    def _checked(self, name: str, offset: int, byte_size: int) -> SystemRegion | CudaRegion:
        region = self.get(name)
        offset, byte_size = int(offset), int(byte_size)
        if offset < 0 or offset >= region.byte_size:
            raise InvalidArgumentError(f"Invalid offset for shared memory region: '{name}'")
        if byte_size < 0 or offset + byte_size > region.byte_size:
            raise InvalidArgumentError(f"Invalid offset + byte size for shared memory region: '{name}'")
        return region

    def read(self, name: str, offset: int, byte_size: int) -> memoryview:
        """Bytes [offset, offset+byte_size) of region ``name``: a zero-copy view for system regions."""
        region = self._checked(name, offset, byte_size)
        if isinstance(region, CudaRegion):
            return region.read(offset, byte_size)
        return region.view()[offset : offset + byte_size]

    def write(self, name: str, offset: int, data: Any) -> None:
        """Copy ``data`` (bytes-like) into region ``name`` at ``offset``."""
        view = memoryview(data).cast("B") if not isinstance(data, memoryview) or data.format != "B" else data
        n = len(view)
        if n == 0:
            self.get(name)
            return
        region = self._checked(name, offset, n)
        if isinstance(region, CudaRegion):
            region.write(offset, view)
        else:
            region.view()[offset : offset + n] = view

    def close(self) -> None:
        """Unregister every region (system and CUDA)."""
        with self._lock:
            regions = list(self._regions.values())
            self._regions.clear()
        for region in regions:
            region.release()

    def __len__(self) -> int:
        return len(self._regions)


_REGISTRIES: "weakref.WeakKeyDictionary[Any, SharedMemoryRegistry]" = weakref.WeakKeyDictionary()
_REGISTRIES_LOCK = threading.Lock()


def registry_for(engine: Any) -> SharedMemoryRegistry:
    """The shared memory registry of ``engine`` (created on first use; HTTP and gRPC share it).

    Its regions are unmapped when the engine is garbage-collected, or earlier by
    :func:`release_registry` (the CLI calls it after ``engine.close()``).
    """
    engine = getattr(engine, "local_engine", engine)  # a --workers worker's view shares its engine's registry
    with _REGISTRIES_LOCK:
        reg = _REGISTRIES.get(engine)
        if reg is None:
            reg = _REGISTRIES[engine] = SharedMemoryRegistry()
            fin = weakref.finalize(engine, reg.close)
            fin.atexit = False
        return reg


def release_registry(engine: Any) -> None:
    """Unregister every region of ``engine``'s registry (no-op if it never had one)."""
    engine = getattr(engine, "local_engine", engine)
    with _REGISTRIES_LOCK:
        reg = _REGISTRIES.pop(engine, None)
    if reg is not None:
        reg.close()


# ---- tensor helpers (both doors) ------------------------------------------------------------------------
@dataclass(frozen=True)
class ShmTarget:
    """Where a tensor lives in shared memory: region name, byte size, offset."""

    region: str
    byte_size: int
    offset: int = 0


def _uint_param(params: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = params.get(key, default)
    if value is None:
        raise InvalidArgumentError(f"Unable to parse '{key}': missing for a tensor that names 'shared_memory_region'")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidArgumentError(f"Unable to parse '{key}': expected an unsigned integer, got {value!r}")
    return int(value)


def shm_target(params: Mapping[str, Any] | None) -> ShmTarget | None:
    """Parse ``shared_memory_region`` / ``_byte_size`` / ``_offset`` tensor parameters (None if absent)."""
    if not params or "shared_memory_region" not in params:
        return None
    region = params["shared_memory_region"]
    if not isinstance(region, str):
        raise InvalidArgumentError("Unable to parse 'shared_memory_region': expected a string")
    return ShmTarget(region, _uint_param(params, "shared_memory_byte_size"), _uint_param(params, "shared_memory_offset", 0))


output_target = shm_target


def input_from_params(
    registry: SharedMemoryRegistry,
    target: ShmTarget,
    datatype: str,
    shape: Sequence[int],
    *,
    name: str = "",
    model: str = "",
) -> np.ndarray:
    """Read an input from shared memory (a zero-copy view for fixed-size types in system regions)."""
    data = registry.read(target.region, target.offset, target.byte_size)
    return from_raw(datatype, shape, data, name=name, model=model)


def write_output(registry: SharedMemoryRegistry, target: ShmTarget, name: str, array: np.ndarray) -> int:
    """Copy an output into its region; returns the bytes written. Too small a region is Triton's error."""
    raw = to_raw(array)
    n = len(raw)
    if n > target.byte_size:
        raise InvalidArgumentError(
            f"shared memory size specified with the request for output '{name}' ({target.byte_size} bytes) "
            f"should be at least {n} bytes to hold the results"
        )
    registry.write(target.region, target.offset, raw)
    return n


__all__ = [
    "SHM_DISABLED",
    "SharedMemoryRegistry",
    "SystemRegion",
    "CudaRegion",
    "ShmTarget",
    "registry_for",
    "release_registry",
    "shm_target",
    "output_target",
    "input_from_params",
    "write_output",
]
