"""TensorRT backend (``platform: "tensorrt_plan"`` / ``backend: "tensorrt"``), TensorRT 10 API.

``model.plan`` is a serialized engine; ``cc_model_filenames`` maps a compute capability ("8.0",
"9.0") to another file in the version directory, picked by the instance's GPU. The engine is
deserialized with ``trt.Runtime(logger).deserialize_cuda_engine`` and its I/O is bound by name:
``engine.num_io_tensors`` / ``get_tensor_name`` / ``get_tensor_mode`` / ``get_tensor_dtype``, then per
execution ``context.set_input_shape``, ``context.set_tensor_address`` and
``context.execute_async_v3(stream)`` on the instance's own CUDA stream.

Dynamic shapes go through optimisation profiles: an instance uses the profiles its instance group lists
(``instance_group { profile: ["0", "1"] }``, all of them when empty), keeps one execution context per
profile (created on first use, each with ``set_optimization_profile_async``), and runs a batch on the
first profile whose min/max shapes admit every input shape. Device buffers belong to the instance,
one per (profile, tensor), and grow when a larger batch needs it; ``close()`` frees them and the stream.

CUDA comes from ``cuda-python`` (``cuda.bindings.runtime``, or the older ``cuda.cudart``) or, failing
that, from torch's CUDA allocator; everything is imported lazily. Without TensorRT, without CUDA or on a
non-GPU instance the load fails with :class:`~tritonlite.errors.UnavailableError` saying what is missing.

Auto-complete reads the engine (inputs, outputs, ``max_batch_size`` from the profiles' largest batch when
every tensor has a dynamic dimension 0); a config that lists its inputs and outputs is left alone, and
one that needs the engine read where TensorRT or a GPU is missing fails the load saying so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tritonlite.backends.base import LoadContext
from tritonlite.backends.batching import FrameworkInstance
from tritonlite.datatypes import DataType
from tritonlite.errors import InternalError, InvalidArgumentError, TritonLiteError, UnavailableError, UnsupportedError

_log = logging.getLogger("tritonlite.backends.tensorrt")

#: TensorRT DataType name -> numpy dtype (BF16 travels as its uint16 bit pattern, as elsewhere)
_NP_BY_TRT: dict[str, np.dtype] = {
    "FLOAT": np.dtype(np.float32),
    "HALF": np.dtype(np.float16),
    "BF16": np.dtype(np.uint16),
    "INT8": np.dtype(np.int8),
    "UINT8": np.dtype(np.uint8),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
}
_DT_BY_TRT: dict[str, DataType] = {
    "FLOAT": DataType.FP32,
    "HALF": DataType.FP16,
    "BF16": DataType.BF16,
    "INT8": DataType.INT8,
    "UINT8": DataType.UINT8,
    "INT32": DataType.INT32,
    "INT64": DataType.INT64,
    "BOOL": DataType.BOOL,
}


def _import_trt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise UnavailableError(
            "the tensorrt backend needs TensorRT 10 and an NVIDIA GPU: pip install 'tritonlite[tensorrt]' on a GPU machine"
        ) from exc
    return tensorrt


def _trt_type_name(dt: Any) -> str:
    name = getattr(dt, "name", None) or str(dt)
    return name.rsplit(".", 1)[-1].upper()


# ---- CUDA -----------------------------------------------------------------------------------------
class CudaRuntime:
    """The few CUDA runtime calls the backend makes, over cuda-python's runtime bindings."""

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.h2d = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self.d2h = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost

    @classmethod
    def load(cls) -> "CudaRuntime | TorchCudaRuntime":
        try:
            from cuda.bindings import runtime as rt  # cuda-python >= 12.6
        except ImportError:
            try:
                from cuda import cudart as rt  # type: ignore[no-redef]  # older cuda-python
            except ImportError:
                rt = None
        if rt is not None:
            return cls(rt)
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None and torch.cuda.is_available():
            return TorchCudaRuntime(torch)
        raise UnavailableError("the tensorrt backend needs cuda-python for device buffers: pip install 'tritonlite[gpu]'")

    def _check(self, result: Any, what: str) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            msg = self.rt.cudaGetErrorString(err)
            text = msg[1] if isinstance(msg, tuple) else msg
            text = text.decode() if isinstance(text, bytes) else str(text)
            raise UnavailableError(f"CUDA {what} failed: {text}")
        return rest[0] if len(rest) == 1 else tuple(rest)

    def device_count(self) -> int:
        try:
            return int(self._check(self.rt.cudaGetDeviceCount(), "cudaGetDeviceCount"))
        except UnavailableError:
            return 0

    def set_device(self, device: int) -> None:
        self._check(self.rt.cudaSetDevice(device), "cudaSetDevice")

    def compute_capability(self, device: int) -> str:
        attr = self.rt.cudaDeviceAttr
        major = self._check(self.rt.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute")
        minor = self._check(self.rt.cudaDeviceGetAttribute(attr.cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute")
        return f"{int(major)}.{int(minor)}"

    def malloc(self, nbytes: int) -> int:
        return int(self._check(self.rt.cudaMalloc(max(1, nbytes)), "cudaMalloc"))

    def free(self, ptr: int) -> None:
        self._check(self.rt.cudaFree(ptr), "cudaFree")

    def stream_create(self) -> Any:
        return self._check(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    def stream_destroy(self, stream: Any) -> None:
        self._check(self.rt.cudaStreamDestroy(stream), "cudaStreamDestroy")

    @staticmethod
    def stream_handle(stream: Any) -> int:
        """The cudaStream_t value TensorRT takes (``int()`` of cuda-python's handle; getPtr() is its address)."""
        return int(stream)

    def copy_to_device(self, ptr: int, arr: np.ndarray, stream: Any) -> None:
        self._check(self.rt.cudaMemcpyAsync(ptr, arr.ctypes.data, arr.nbytes, self.h2d, stream), "cudaMemcpyAsync")

    def copy_to_host(self, arr: np.ndarray, ptr: int, stream: Any) -> None:
        self._check(self.rt.cudaMemcpyAsync(arr.ctypes.data, ptr, arr.nbytes, self.d2h, stream), "cudaMemcpyAsync")

    def synchronize(self, stream: Any) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")


class TorchCudaRuntime:
    """Same calls through torch's CUDA caching allocator (when cuda-python is absent but torch has CUDA)."""

    def __init__(self, torch: Any) -> None:
        self.torch = torch
        self._buffers: dict[int, Any] = {}
        self._device = 0

    def device_count(self) -> int:
        return int(self.torch.cuda.device_count())

    def set_device(self, device: int) -> None:
        self._device = device
        self.torch.cuda.set_device(device)

    def compute_capability(self, device: int) -> str:
        major, minor = self.torch.cuda.get_device_capability(device)
        return f"{major}.{minor}"

    def malloc(self, nbytes: int) -> int:
        t = self.torch.empty(max(1, nbytes), dtype=self.torch.uint8, device=f"cuda:{self._device}")
        self._buffers[t.data_ptr()] = t
        return int(t.data_ptr())

    def free(self, ptr: int) -> None:
        self._buffers.pop(ptr, None)

    def stream_create(self) -> Any:
        return self.torch.cuda.Stream(device=self._device)

    def stream_destroy(self, stream: Any) -> None:
        pass

    @staticmethod
    def stream_handle(stream: Any) -> int:
        return int(stream.cuda_stream)

    def copy_to_device(self, ptr: int, arr: np.ndarray, stream: Any) -> None:
        src = self.torch.from_numpy(np.ascontiguousarray(arr).reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(stream):
            self._buffers[ptr][: arr.nbytes].copy_(src, non_blocking=False)

    def copy_to_host(self, arr: np.ndarray, ptr: int, stream: Any) -> None:
        dst = self.torch.from_numpy(arr.reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(stream):
            dst.copy_(self._buffers[ptr][: arr.nbytes])

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()


# ---- engine facts ---------------------------------------------------------------------------------
class _Tensor:
    __slots__ = ("name", "is_input", "dtype", "type_name", "shape")

    def __init__(self, name: str, is_input: bool, dtype: np.dtype, type_name: str, shape: tuple[int, ...]) -> None:
        self.name, self.is_input, self.dtype, self.type_name, self.shape = name, is_input, dtype, type_name, shape


def _engine_tensors(trt: Any, engine: Any, model: str) -> dict[str, _Tensor]:
    out: dict[str, _Tensor] = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        type_name = _trt_type_name(engine.get_tensor_dtype(name))
        dtype = _NP_BY_TRT.get(type_name)
        if dtype is None:
            raise UnsupportedError(f"model '{model}': TensorRT tensor '{name}' has type {type_name}, which tritonlite cannot exchange")
        check = getattr(engine, "is_shape_inference_io", None)
        if check is not None and check(name):
            raise UnsupportedError(f"model '{model}': TensorRT shape tensor '{name}' is not supported")
        out[name] = _Tensor(name, is_input, dtype, type_name, tuple(int(d) for d in engine.get_tensor_shape(name)))
    return out


def _profile_ranges(engine: Any, tensors: Mapping[str, _Tensor], profiles: Sequence[int]) -> dict[int, dict[str, tuple[tuple[int, ...], tuple[int, ...]]]]:
    """profile -> input -> (min shape, max shape), for inputs with dynamic dims."""
    ranges: dict[int, dict[str, tuple[tuple[int, ...], tuple[int, ...]]]] = {}
    for p in profiles:
        per: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        for t in tensors.values():
            if t.is_input and -1 in t.shape:
                mn, _opt, mx = engine.get_tensor_profile_shape(t.name, p)
                per[t.name] = (tuple(int(d) for d in mn), tuple(int(d) for d in mx))
        ranges[p] = per
    return ranges


def _group_profiles(config: Any, instance_name: str) -> list[str]:
    """The ``profile`` list of the instance group this instance belongs to."""
    best = None
    for group in config.instance_group:
        if instance_name == group.name or instance_name.startswith(group.name + "_"):
            if best is None or len(group.name) > len(best.name):
                best = group
    return list(best.profile) if best is not None else []


def _model_file(ctx: LoadContext, cuda: Any, device: int) -> Path:
    cfg = ctx.config
    if cfg.cc_model_filenames:
        cc = cuda.compute_capability(device)
        name = cfg.cc_model_filenames.get(cc)
        if name:
            return ctx.version_dir / name
    return ctx.model_path


def _deserialize(trt: Any, path: Path, model: str) -> tuple[Any, Any]:
    if not path.is_file():
        raise InvalidArgumentError(f"unable to find TensorRT plan file '{path}' for model '{model}'")
    logger = trt.Logger(trt.Logger.WARNING)
    runtime = trt.Runtime(logger)
    try:
        engine = runtime.deserialize_cuda_engine(path.read_bytes())
    except Exception as exc:
        raise InvalidArgumentError(f"failed to deserialize TensorRT plan '{path}': {exc}") from exc
    if engine is None:
        raise InvalidArgumentError(
            f"failed to deserialize TensorRT plan '{path}': not a plan for this TensorRT version and GPU (see TensorRT's log)"
        )
    return runtime, engine


# ---- the instance --------------------------------------------------------------------------------
class TensorRTInstance(FrameworkInstance):
    """One deserialized engine on one GPU: contexts per profile, device buffers, one CUDA stream."""

    def __init__(self, ctx: LoadContext) -> None:
        super().__init__(ctx.config)
        cfg = ctx.config
        model = self.model_name = ctx.model_name
        if ctx.instance_kind != "GPU":
            raise UnavailableError(
                f"instance '{ctx.instance_name}' of model '{model}' is KIND_{ctx.instance_kind}: TensorRT plans run on "
                "GPU instances only (KIND_GPU, or KIND_AUTO on a machine with an NVIDIA GPU)"
            )
        self.trt = trt = _import_trt()
        self.cuda = cuda = CudaRuntime.load()
        count = cuda.device_count()
        if ctx.device_id >= count:
            raise UnavailableError(f"instance '{ctx.instance_name}' of model '{model}' needs GPU {ctx.device_id} but CUDA sees {count}")
        self.device = ctx.device_id
        cuda.set_device(self.device)
        self.path = _model_file(ctx, cuda, self.device)
        self.runtime, self.engine = _deserialize(trt, self.path, model)
        self.tensors = _engine_tensors(trt, self.engine, model)
        for io, want_input in ((cfg.input, True), (cfg.output, False)):
            for t in io:
                found = self.tensors.get(t.name)
                if found is None or found.is_input != want_input:
                    kind = "input" if want_input else "output"
                    names = sorted(n for n, v in self.tensors.items() if v.is_input == want_input)
                    raise InvalidArgumentError(f"model '{model}': {kind} '{t.name}' is not an {kind} of the TensorRT engine (its {kind}s: {names})")
        n_profiles = max(1, int(getattr(self.engine, "num_optimization_profiles", 1)))
        wanted = _group_profiles(cfg, ctx.instance_name)
        try:
            self.profiles = [int(p) for p in wanted] if wanted else list(range(n_profiles))
        except ValueError:
            raise InvalidArgumentError(f"model '{model}': instance group profiles {wanted} must be integers") from None
        bad = [p for p in self.profiles if not 0 <= p < n_profiles]
        if bad:
            raise InvalidArgumentError(f"model '{model}': optimization profile(s) {bad} do not exist; the engine has {n_profiles}")
        self.ranges = _profile_ranges(self.engine, self.tensors, self.profiles)
        self.stream = cuda.stream_create()
        self.stream_handle = cuda.stream_handle(self.stream)
        self.contexts: dict[int, Any] = {}
        self.buffers: dict[tuple[int, str], tuple[int, int]] = {}  # (profile, tensor) -> (ptr, capacity)
        self.outputs = [n for n, t in self.tensors.items() if not t.is_input]
        self._last: tuple[tuple[tuple[str, tuple[int, ...]], ...], int] | None = None

    # ---- profiles, contexts, buffers ------------------------------------------------------------------
    def select_profile(self, shapes: Mapping[str, tuple[int, ...]]) -> int:
        key = tuple(sorted(shapes.items()))
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        for name, shape in shapes.items():
            t = self.tensors.get(name)
            if t is None or not t.is_input:
                raise InvalidArgumentError(f"unexpected input '{name}' for TensorRT model '{self.model_name}'")
            if len(shape) != len(t.shape) or any(e != -1 and e != s for e, s in zip(t.shape, shape)):
                raise InvalidArgumentError(
                    f"input '{name}' of TensorRT model '{self.model_name}' has shape {list(shape)}, the engine takes {list(t.shape)}"
                )
        for p in self.profiles:
            ok = True
            for name, (mn, mx) in self.ranges[p].items():
                shape = shapes.get(name)
                if shape is None or not all(lo <= s <= hi for lo, s, hi in zip(mn, shape, mx)):
                    ok = False
                    break
            if ok:
                self._last = (key, p)
                return p
        desc = "; ".join(f"profile {p}: " + ", ".join(f"{n} {list(mn)}..{list(mx)}" for n, (mn, mx) in self.ranges[p].items()) for p in self.profiles)
        raise InvalidArgumentError(
            f"no optimization profile of TensorRT model '{self.model_name}' admits input shapes "
            f"{ {n: list(s) for n, s in shapes.items()} } ({desc})"
        )

    def _context(self, profile: int) -> Any:
        ctx = self.contexts.get(profile)
        if ctx is None:
            ctx = self.engine.create_execution_context()
            if ctx is None:
                raise UnavailableError(f"TensorRT could not create an execution context for model '{self.model_name}' (out of GPU memory?)")
            if len(self.profiles) > 1 or profile != 0:
                ctx.set_optimization_profile_async(profile, self.stream_handle)
                self.cuda.synchronize(self.stream)
            self.contexts[profile] = ctx
        return ctx

    def _buffer(self, profile: int, name: str, nbytes: int) -> int:
        key = (profile, name)
        held = self.buffers.get(key)
        if held is not None and held[1] >= nbytes:
            return held[0]
        if held is not None:
            self.cuda.free(held[0])
            del self.buffers[key]
        capacity = max(nbytes, 256)
        ptr = self.cuda.malloc(capacity)
        self.buffers[key] = (ptr, capacity)
        return ptr

    # ---- execution ----------------------------------------------------------------------------------
    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str]) -> Mapping[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for name, arr in feeds.items():
            t = self.tensors.get(name)
            if t is None or not t.is_input:
                raise InvalidArgumentError(f"unexpected input '{name}' for TensorRT model '{self.model_name}'")
            arrays[name] = np.ascontiguousarray(arr, dtype=t.dtype)
        missing = [n for n, t in self.tensors.items() if t.is_input and n not in arrays]
        if missing:
            raise InvalidArgumentError(f"TensorRT model '{self.model_name}' needs input(s) {missing}")
        profile = self.select_profile({n: a.shape for n, a in arrays.items()})
        context = self._context(profile)
        cuda, stream = self.cuda, self.stream
        self.cuda.set_device(self.device)
        for name, arr in arrays.items():
            if not context.set_input_shape(name, arr.shape):
                raise InvalidArgumentError(f"TensorRT rejected shape {list(arr.shape)} for input '{name}' of model '{self.model_name}'")
            ptr = self._buffer(profile, name, arr.nbytes)
            cuda.copy_to_device(ptr, arr, stream)
            context.set_tensor_address(name, ptr)
        results: dict[str, tuple[np.ndarray, int]] = {}
        for name in self.outputs:
            t = self.tensors[name]
            shape = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise UnsupportedError(f"output '{name}' of TensorRT model '{self.model_name}' has a data-dependent shape {list(shape)}")
            host = np.empty(shape, dtype=t.dtype)
            ptr = self._buffer(profile, name, host.nbytes)
            context.set_tensor_address(name, ptr)
            results[name] = (host, ptr)
        if not context.execute_async_v3(self.stream_handle):
            raise InternalError(f"TensorRT execute_async_v3 failed for model '{self.model_name}' (see TensorRT's log)")
        wanted = list(output_names) or self.outputs
        for name in wanted:
            host, ptr = results[name]
            cuda.copy_to_host(host, ptr, stream)
        cuda.synchronize(stream)
        return {n: results[n][0] for n in wanted}

    def close(self) -> None:
        cuda = getattr(self, "cuda", None)
        if cuda is None:
            return
        for ptr, _ in self.buffers.values():
            try:
                cuda.free(ptr)
            except TritonLiteError:
                _log.exception("freeing a TensorRT device buffer of model '%s' failed", self.model_name)
        self.buffers.clear()
        self.contexts.clear()
        if getattr(self, "stream", None) is not None:
            try:
                cuda.stream_destroy(self.stream)
            except TritonLiteError:
                _log.exception("destroying the CUDA stream of model '%s' failed", self.model_name)
            self.stream = None
        self.engine = None
        self.runtime = None


class TensorRTBackend:
    """Registered as ``tensorrt``; auto-completes from the engine when TensorRT and a GPU are here."""

    name = "tensorrt"

    def auto_complete_config(self, ctx: LoadContext) -> None:
        cfg = ctx.config
        if cfg.input and cfg.output:
            return
        try:
            trt = _import_trt()
            cuda = CudaRuntime.load()
            if cuda.device_count() == 0:
                raise UnavailableError("CUDA sees no GPU")
        except UnavailableError as exc:  # the engine file can only be read where it can run
            raise UnavailableError(
                f"model '{ctx.model_name}': config.pbtxt lists no inputs/outputs and reading them from the TensorRT plan "
                f"needs TensorRT and a GPU: {exc.message}"
            ) from exc
        cuda.set_device(0)
        _runtime, engine = _deserialize(trt, _model_file(ctx, cuda, 0), ctx.model_name)
        tensors = _engine_tensors(trt, engine, ctx.model_name)
        fully_auto = not cfg.input and not cfg.output
        if fully_auto and cfg.max_batch_size == 0 and tensors and all(len(t.shape) >= 2 and t.shape[0] == -1 for t in tensors.values()):
            n_profiles = max(1, int(getattr(engine, "num_optimization_profiles", 1)))
            ranges = _profile_ranges(engine, tensors, range(n_profiles))
            limits = [max(r[n][1][0] for r in ranges.values()) for n in ranges[0]] if ranges and ranges[0] else []
            if limits:
                cfg.max_batch_size = max(1, min(limits))
                if cfg.max_batch_size > 1 and cfg.WhichOneof("scheduling_choice") is None:
                    cfg.dynamic_batching.SetInParent()
        strip = 1 if cfg.max_batch_size > 0 else 0
        for group, want_input in ((cfg.input, True), (cfg.output, False)):
            if group:
                continue
            for t in tensors.values():
                if t.is_input == want_input:
                    group.add(name=t.name, data_type=int(_DT_BY_TRT[t.type_name])).dims.extend(list(t.shape[strip:]))

    def create_instance(self, ctx: LoadContext) -> TensorRTInstance:
        return TensorRTInstance(ctx)


__all__ = ["TensorRTBackend", "TensorRTInstance", "CudaRuntime"]
