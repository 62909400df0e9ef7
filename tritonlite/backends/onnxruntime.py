"""ONNX Runtime backend (``platform: "onnxruntime_onnx"`` / ``backend: "onnxruntime"``).

Session options come from config ``parameters`` with the names Triton's onnxruntime backend uses
(``intra_op_thread_count``, ``inter_op_thread_count``, ``execution_mode``, ``enable_mem_arena``,
``enable_mem_pattern``) and ``optimization { graph { level } }`` (-1 basic, 1 extended, else all).
GPU instances use the CUDA provider and are refused clearly when it is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tritonlite.backends.base import LoadContext
from tritonlite.backends.batching import FrameworkInstance
from tritonlite.datatypes import DataType
from tritonlite.errors import InvalidArgumentError, UnavailableError

#: ONNX tensor element type string -> config data type
_ONNX_TYPES: dict[str, DataType] = {
    "tensor(bool)": DataType.BOOL,
    "tensor(uint8)": DataType.UINT8,
    "tensor(uint16)": DataType.UINT16,
    "tensor(uint32)": DataType.UINT32,
    "tensor(uint64)": DataType.UINT64,
    "tensor(int8)": DataType.INT8,
    "tensor(int16)": DataType.INT16,
    "tensor(int32)": DataType.INT32,
    "tensor(int64)": DataType.INT64,
    "tensor(float16)": DataType.FP16,
    "tensor(float)": DataType.FP32,
    "tensor(double)": DataType.FP64,
    "tensor(string)": DataType.BYTES,
    "tensor(bfloat16)": DataType.BF16,
}

#: Triton's ORT backend uses 4 when it turns batching on by itself
DEFAULT_MAX_BATCH_SIZE = 4


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UnavailableError(
            "the onnxruntime backend needs onnxruntime: pip install 'tritonlite[onnxruntime]'"
        ) from exc
    return onnxruntime


def _model_file(path: Path) -> Path:
    """``model.onnx`` may be a file or a directory holding ``model.onnx`` (external weights)."""
    if path.is_dir():
        inner = path / "model.onnx"
        if inner.is_file():
            return inner
        raise InvalidArgumentError(f"ONNX model directory '{path}' holds no model.onnx")
    if not path.is_file():
        raise InvalidArgumentError(f"unable to find ONNX model file '{path}'")
    return path


def _parameters(config: Any) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


def _session_options(ort: Any, config: Any) -> Any:
    opts = ort.SessionOptions()
    params = _parameters(config)

    def as_int(key: str) -> int | None:
        if key not in params:
            return None
        try:
            return int(params[key])
        except ValueError:
            raise InvalidArgumentError(f"parameter '{key}' of model '{config.name}' must be an integer, got '{params[key]}'") from None

    if (n := as_int("intra_op_thread_count")) is not None and n > 0:
        opts.intra_op_num_threads = n
    if (n := as_int("inter_op_thread_count")) is not None and n > 0:
        opts.inter_op_num_threads = n
    if (n := as_int("execution_mode")) is not None:
        opts.execution_mode = ort.ExecutionMode.ORT_PARALLEL if n == 1 else ort.ExecutionMode.ORT_SEQUENTIAL
    if (n := as_int("enable_mem_arena")) is not None:
        opts.enable_cpu_mem_arena = bool(n)
    if (n := as_int("enable_mem_pattern")) is not None:
        opts.enable_mem_pattern = bool(n)
    level = config.optimization.graph.level if config.HasField("optimization") else 0
    opts.graph_optimization_level = {
        -1: ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        1: ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }.get(level, ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    return opts


def _providers(ort: Any, ctx: LoadContext) -> list[Any]:
    if ctx.instance_kind != "GPU":
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise UnavailableError(
            f"instance '{ctx.instance_name}' of model '{ctx.model_name}' is KIND_GPU but onnxruntime has no "
            "CUDAExecutionProvider here; install 'tritonlite[onnxruntime-gpu]' on a machine with CUDA, or use KIND_CPU"
        )
    return [("CUDAExecutionProvider", {"device_id": ctx.device_id}), "CPUExecutionProvider"]


class OnnxRuntimeInstance(FrameworkInstance):
    """One InferenceSession; BYTES travel to ORT as str and come back as bytes."""

    def __init__(self, ctx: LoadContext) -> None:
        super().__init__(ctx.config)
        ort = _import_ort()
        path = _model_file(ctx.model_path)
        try:
            self.session = ort.InferenceSession(str(path), sess_options=_session_options(ort, ctx.config), providers=_providers(ort, ctx))
        except (UnavailableError, InvalidArgumentError):
            raise
        except Exception as exc:
            raise InvalidArgumentError(f"failed to load ONNX model '{path}': {exc}") from exc
        self._string_inputs = {i.name for i in self.session.get_inputs() if i.type == "tensor(string)"}
        self._model_outputs = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str]) -> Mapping[str, np.ndarray]:
        if self._string_inputs:
            feeds = {
                k: (np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(v) if k in self._string_inputs else v)
                for k, v in feeds.items()
            }
        names = list(output_names) or self._model_outputs
        values = self.session.run(names, dict(feeds))
        out: dict[str, np.ndarray] = {}
        for name, value in zip(names, values):
            if value.dtype.kind in ("O", "U"):
                value = np.vectorize(lambda s: s if isinstance(s, bytes) else str(s).encode("utf-8"), otypes=[object])(value)
            out[name] = value
        return out

    def close(self) -> None:
        self.session = None


def _io_dims(shape: Sequence[Any]) -> list[int]:
    return [d if isinstance(d, int) and d >= 0 else -1 for d in shape]


class OnnxRuntimeBackend:
    """Registered as ``onnxruntime``; fills missing config from the model when auto-complete is on."""

    name = "onnxruntime"
    default_cpu_instance_count = 2

    def auto_complete_config(self, ctx: LoadContext) -> None:
        cfg = ctx.config
        ort = _import_ort()
        path = _model_file(ctx.model_path)
        try:
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise InvalidArgumentError(f"failed to load ONNX model '{path}' for auto-complete: {exc}") from exc
        ins, outs = sess.get_inputs(), sess.get_outputs()
        fully_auto = not cfg.input and not cfg.output
        # rank >= 2 everywhere: stripping the batch dim must leave real dims behind
        batchable = all(len(t.shape) >= 2 and not isinstance(t.shape[0], int) for t in list(ins) + list(outs))
        if fully_auto and cfg.max_batch_size == 0 and batchable:
            cfg.max_batch_size = DEFAULT_MAX_BATCH_SIZE
            if cfg.WhichOneof("scheduling_choice") is None:
                cfg.dynamic_batching.SetInParent()
        strip = 1 if cfg.max_batch_size > 0 else 0
        # the sequence batcher feeds control and state tensors itself: they are not client inputs/outputs
        seq = cfg.sequence_batching
        internal = {c.name for c in seq.control_input} | {s.input_name for s in seq.state} | {s.output_name for s in seq.state}
        known_in = {i.name for i in cfg.input} | internal
        for t in ins:
            if t.name in known_in:
                continue
            dt = _ONNX_TYPES.get(t.type)
            if dt is None:
                raise InvalidArgumentError(f"model '{ctx.model_name}' input '{t.name}' has unsupported ONNX type {t.type}")
            new = cfg.input.add(name=t.name, data_type=int(dt))
            new.dims.extend(_io_dims(t.shape[strip:]))
        known_out = {o.name for o in cfg.output} | internal
        for t in outs:
            if t.name in known_out:
                continue
            dt = _ONNX_TYPES.get(t.type)
            if dt is None:
                raise InvalidArgumentError(f"model '{ctx.model_name}' output '{t.name}' has unsupported ONNX type {t.type}")
            new = cfg.output.add(name=t.name, data_type=int(dt))
            new.dims.extend(_io_dims(t.shape[strip:]))

    def create_instance(self, ctx: LoadContext) -> OnnxRuntimeInstance:
        return OnnxRuntimeInstance(ctx)


__all__ = ["OnnxRuntimeBackend", "OnnxRuntimeInstance"]
