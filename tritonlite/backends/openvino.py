"""OpenVINO backend (``backend: "openvino"``), on OpenVINO's CPU device as Triton's backend is.

Model files: ``model.xml`` (+ ``model.bin`` beside it) by default; ``default_model_filename:
"model.onnx"`` (or any other format ``openvino.Core.read_model`` reads) works too.

Precision: OpenVINO's CPU plugin infers in bf16 on CPUs that have it (errors ~1e-2), so the backend
sets ``INFERENCE_PRECISION_HINT=f32`` unless the config asks otherwise with ``HINT_BF16: "YES"`` or
with ``INFERENCE_PRECISION_HINT`` (``f32`` / ``bf16`` / ``f16``; a tritonlite extension).

``parameters`` (``string_value``), as Triton's OpenVINO backend names them, mapped to OpenVINO properties:

| parameter | OpenVINO property |
|---|---|
| ``PERFORMANCE_HINT`` (``LATENCY`` / ``THROUGHPUT`` / ``CUMULATIVE_THROUGHPUT``) | ``PERFORMANCE_HINT`` |
| ``NUM_STREAMS`` (``AUTO`` / ``NUMA`` / a number) | ``NUM_STREAMS`` |
| ``INFERENCE_NUM_THREADS`` | ``INFERENCE_NUM_THREADS`` |
| ``COMPILATION_NUM_THREADS`` | ``COMPILATION_NUM_THREADS`` (skipped with a log line when the CPU plugin lacks it) |
| ``HINT_BF16`` (``YES``) | ``INFERENCE_PRECISION_HINT=bf16`` |
| ``CPU_EXTENSION_PATH`` | ``Core.add_extension(path)`` |
| ``SKIP_OV_DYNAMIC_BATCHSIZE`` (``YES``) | keep the model's own batch dimension |
| ``ENABLE_BATCH_PADDING`` (``YES``) | pad a smaller batch up to a static batch dimension |
| ``RESHAPE_IO_LAYERS`` (``YES``) | reshape the inputs to the config's dims (-1 = dynamic) |

Dynamic batch: with ``max_batch_size > 0`` the model's dimension 0 is reshaped to dynamic (-1) so that
any batch up to ``max_batch_size`` runs, unless ``SKIP_OV_DYNAMIC_BATCHSIZE`` says not to.

Auto-complete fills inputs and outputs (names, types, dims) from the model; ``max_batch_size`` becomes
4 with ``dynamic_batching {}`` when every tensor has a dynamic dimension 0 or the model's layout names
dimension 0 ``N``. OpenVINO runs on the CPU here: KIND_AUTO groups become KIND_CPU during
auto-complete (Triton's backend declares the same preference) and KIND_GPU instances are refused.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np

from tritonlite.backends.base import LoadContext
from tritonlite.backends.batching import FrameworkInstance
from tritonlite.datatypes import DataType
from tritonlite.errors import InternalError, InvalidArgumentError, TritonLiteError, UnavailableError

_log = logging.getLogger("tritonlite.backends.openvino")

DEFAULT_MAX_BATCH_SIZE = 4

_YES = {"yes", "true", "1", "on"}
_PRECISIONS = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}
_HINTS = {"LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT"}

_OV_TYPES: dict[str, DataType] = {
    "boolean": DataType.BOOL,
    "u8": DataType.UINT8,
    "u16": DataType.UINT16,
    "u32": DataType.UINT32,
    "u64": DataType.UINT64,
    "i8": DataType.INT8,
    "i16": DataType.INT16,
    "i32": DataType.INT32,
    "i64": DataType.INT64,
    "f16": DataType.FP16,
    "f32": DataType.FP32,
    "f64": DataType.FP64,
    "bf16": DataType.BF16,
    "string": DataType.BYTES,
}


def _import_ov() -> Any:
    try:
        import openvino
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UnavailableError("the openvino backend needs openvino: pip install 'tritonlite[openvino]'") from exc
    return openvino


def _parameters(config: Any) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


def _yes(params: Mapping[str, str], key: str) -> bool:
    return params.get(key, "").strip().lower() in _YES


def _ov_message(exc: BaseException) -> str:
    """OpenVINO errors stack 'Exception from src/...' lines; keep the ones that say something."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.strip().startswith("Exception from src/")]
    return " ".join(lines) or type(exc).__name__


def _type_name(element_type: Any) -> str:
    return element_type.get_type_name()


def _dims(partial_shape: Any) -> list[int]:
    return [d.get_length() if d.is_static else -1 for d in partial_shape]


def compile_properties(ov: Any, core: Any, config: Any) -> dict[str, str]:
    """The compile_model properties for ``config``'s parameters (f32 unless asked otherwise)."""
    params = _parameters(config)
    model = config.name
    props: dict[str, str] = {"INFERENCE_PRECISION_HINT": "f32"}
    if _yes(params, "HINT_BF16"):
        props["INFERENCE_PRECISION_HINT"] = "bf16"
    if "INFERENCE_PRECISION_HINT" in params:
        value = params["INFERENCE_PRECISION_HINT"].strip().lower()
        if value not in _PRECISIONS:
            raise InvalidArgumentError(f"parameter 'INFERENCE_PRECISION_HINT' of model '{model}' must be f32, bf16 or f16, got '{params['INFERENCE_PRECISION_HINT']}'")
        props["INFERENCE_PRECISION_HINT"] = _PRECISIONS[value]
    if "PERFORMANCE_HINT" in params:
        hint = params["PERFORMANCE_HINT"].strip().upper()
        if hint not in _HINTS:
            raise InvalidArgumentError(f"parameter 'PERFORMANCE_HINT' of model '{model}' must be one of {sorted(_HINTS)}, got '{params['PERFORMANCE_HINT']}'")
        props["PERFORMANCE_HINT"] = hint
    if "NUM_STREAMS" in params:
        streams = params["NUM_STREAMS"].strip().upper()
        if streams not in ("AUTO", "NUMA") and not (streams.lstrip("-").isdigit() and int(streams) >= -1):
            raise InvalidArgumentError(f"parameter 'NUM_STREAMS' of model '{model}' must be AUTO, NUMA or a number, got '{params['NUM_STREAMS']}'")
        props["NUM_STREAMS"] = streams
    for key in ("INFERENCE_NUM_THREADS", "COMPILATION_NUM_THREADS"):
        if key in params:
            value = params[key].strip()
            if not value.isdigit():
                raise InvalidArgumentError(f"parameter '{key}' of model '{model}' must be a non-negative integer, got '{params[key]}'")
            props[key] = value
    try:
        supported = set(core.get_property("CPU", "SUPPORTED_PROPERTIES"))
    except Exception:  # pragma: no cover - very old OpenVINO
        supported = set(props)
    for key in list(props):
        if supported and key not in supported:
            _log.info("model '%s': OpenVINO's CPU plugin has no property %s; ignored", model, key)
            del props[key]
    return props


class _Port:
    """One model input or output, pre-digested for the hot path."""

    __slots__ = ("name", "index", "dtype", "is_string")

    def __init__(self, name: str, index: int, dtype: np.dtype | None, is_string: bool) -> None:
        self.name, self.index, self.dtype, self.is_string = name, index, dtype, is_string


def _find_port(ports: Sequence[Any], name: str) -> int | None:
    for i, p in enumerate(ports):
        if name in p.get_names():
            return i
    return None


def _port_dtype(port: Any) -> tuple[np.dtype | None, bool]:
    et = port.get_element_type()
    name = _type_name(et)
    if name == "string":
        return None, True
    if name == "bf16":
        return np.dtype(np.uint16), False
    try:
        return np.dtype(et.to_dtype()), False
    except Exception:
        return None, False


def _prepare_model(ov: Any, model: Any, config: Any, params: Mapping[str, str]) -> None:
    """Dynamic batch dimension, or the config's shapes with RESHAPE_IO_LAYERS."""
    batching = config.max_batch_size > 0
    if _yes(params, "RESHAPE_IO_LAYERS"):
        shapes: dict[int, Any] = {}
        for inp in config.input:
            i = _find_port(model.inputs, inp.name)
            if i is None:
                continue
            dims = ([-1] if batching else []) + [int(d) for d in inp.dims]
            shapes[i] = ov.PartialShape(dims)
        if shapes:
            model.reshape({model.inputs[i]: s for i, s in shapes.items()})
        return
    if not batching or _yes(params, "SKIP_OV_DYNAMIC_BATCHSIZE"):
        return
    shapes = {}
    for port in model.inputs:
        ps = port.get_partial_shape()
        if ps.rank.is_dynamic or ps.rank.get_length() < 1 or ps[0].is_dynamic:
            continue
        dims = _dims(ps)
        dims[0] = -1
        shapes[port] = ov.PartialShape(dims)
    if shapes:
        model.reshape(shapes)


class OpenVINOInstance(FrameworkInstance):
    """One compiled model and one infer request (an instance runs one batch at a time)."""

    def __init__(self, ctx: LoadContext) -> None:
        super().__init__(ctx.config)
        cfg = ctx.config
        if ctx.instance_kind == "GPU":
            raise UnavailableError(
                f"instance '{ctx.instance_name}' of model '{ctx.model_name}' is KIND_GPU but the openvino backend "
                "runs on the CPU device only (as Triton's does); use KIND_CPU"
            )
        ov = _import_ov()
        params = _parameters(cfg)
        path = ctx.model_path
        if not path.exists():
            raise InvalidArgumentError(f"unable to find OpenVINO model file '{path}' for model '{ctx.model_name}'")
        core = ov.Core()
        try:
            if params.get("CPU_EXTENSION_PATH"):
                core.add_extension(params["CPU_EXTENSION_PATH"])
            model = core.read_model(str(path))
        except Exception as exc:
            raise InvalidArgumentError(f"failed to read OpenVINO model '{path}': {_ov_message(exc)}") from exc
        try:
            _prepare_model(ov, model, cfg, params)
        except Exception as exc:
            raise InvalidArgumentError(
                f"model '{ctx.model_name}': OpenVINO cannot reshape the model for batching ({_ov_message(exc)}); "
                "set parameter SKIP_OV_DYNAMIC_BATCHSIZE to YES to keep its own batch dimension"
            ) from exc
        props = compile_properties(ov, core, cfg)
        try:
            self.compiled = core.compile_model(model, "CPU", props)
        except Exception as exc:
            raise InvalidArgumentError(f"failed to compile OpenVINO model '{path}': {_ov_message(exc)}") from exc
        self.request = self.compiled.create_infer_request()
        self.properties = props
        self.inputs: dict[str, _Port] = {}
        for inp in cfg.input:
            i = _find_port(self.compiled.inputs, inp.name)
            if i is None:
                names = [sorted(p.get_names()) for p in self.compiled.inputs]
                raise InvalidArgumentError(f"model '{ctx.model_name}': input '{inp.name}' is not an input of the OpenVINO model (its inputs: {names})")
            self.inputs[inp.name] = _Port(inp.name, i, *_port_dtype(self.compiled.inputs[i]))
        self.outputs: dict[str, _Port] = {}
        for out in cfg.output:
            i = _find_port(self.compiled.outputs, out.name)
            if i is None:
                names = [sorted(p.get_names()) for p in self.compiled.outputs]
                raise InvalidArgumentError(f"model '{ctx.model_name}': output '{out.name}' is not an output of the OpenVINO model (its outputs: {names})")
            self.outputs[out.name] = _Port(out.name, i, DataType(out.data_type).numpy_dtype if out.data_type not in (DataType.BYTES, DataType.BF16) else None, False)
        # a static batch dimension: pad smaller batches when asked to
        self.pad_to = 0
        if cfg.max_batch_size > 0 and _yes(params, "ENABLE_BATCH_PADDING"):
            ps = self.compiled.inputs[0].get_partial_shape()
            if ps.rank.is_static and ps.rank.get_length() > 0 and ps[0].is_static:
                self.pad_to = ps[0].get_length()

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str]) -> Mapping[str, np.ndarray]:
        data: dict[int, Any] = {}
        n = 0
        for name, arr in feeds.items():
            port = self.inputs.get(name)
            if port is None:
                raise InvalidArgumentError(f"unexpected input '{name}'")
            if port.is_string:
                arr = np.array([b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b) for b in arr.reshape(-1)]).reshape(arr.shape)
            elif port.dtype is not None and arr.dtype != port.dtype:
                arr = arr.astype(port.dtype)
            n = arr.shape[0] if arr.ndim else 0
            if self.pad_to and 0 < n < self.pad_to:
                pad = np.zeros((self.pad_to - n,) + arr.shape[1:], dtype=arr.dtype)
                arr = np.concatenate([arr, pad])
            data[port.index] = arr
        try:
            result = self.request.infer(data, share_inputs=True)
        except Exception as exc:
            raise InvalidArgumentError(f"OpenVINO infer failed: {_ov_message(exc)}") from exc
        values = result.to_tuple()
        out: dict[str, np.ndarray] = {}
        for name in output_names or list(self.outputs):
            port = self.outputs.get(name)
            if port is None:
                raise InternalError(f"unknown output '{name}'")
            value = np.asarray(values[port.index])
            if value.dtype.kind in ("U", "S"):
                value = np.vectorize(lambda s: s.encode("utf-8") if isinstance(s, str) else bytes(s), otypes=[object])(value)
            elif port.dtype is not None and value.dtype != port.dtype:
                value = value.astype(port.dtype)
            if self.pad_to and 0 < n < self.pad_to and value.ndim:
                value = value[:n]
            out[name] = value
        return out

    def close(self) -> None:
        self.request = None
        self.compiled = None


class OpenVINOBackend:
    """Registered as ``openvino``; auto-completes from the model's inputs and outputs."""

    name = "openvino"

    def auto_complete_config(self, ctx: LoadContext) -> None:
        cfg = ctx.config
        for group in cfg.instance_group:  # the CPU is this backend's preferred (only) kind
            if group.kind == group.KIND_AUTO:
                group.kind = group.KIND_CPU
        if not ctx.model_path.exists():
            return  # the load reports it
        ov = _import_ov()
        try:
            model = ov.Core().read_model(str(ctx.model_path))
        except Exception as exc:
            raise InvalidArgumentError(f"failed to read OpenVINO model '{ctx.model_path}' for auto-complete: {_ov_message(exc)}") from exc
        ports = list(model.inputs) + list(model.outputs)
        fully_auto = not cfg.input and not cfg.output
        if fully_auto and cfg.max_batch_size == 0 and ports and all(_batch_dim(ov, p) for p in ports):
            cfg.max_batch_size = DEFAULT_MAX_BATCH_SIZE
            if cfg.WhichOneof("scheduling_choice") is None:
                cfg.dynamic_batching.SetInParent()
        strip = 1 if cfg.max_batch_size > 0 else 0
        for group, items in ((cfg.input, model.inputs), (cfg.output, model.outputs)):
            known = {t.name for t in group}
            claimed = {n for p in items for n in p.get_names() if n in known}
            for port in items:
                if not port.get_names() or claimed & port.get_names():
                    continue
                name = port.get_any_name()
                dt = _OV_TYPES.get(_type_name(port.get_element_type()))
                if dt is None:
                    raise InvalidArgumentError(f"model '{ctx.model_name}' tensor '{name}' has unsupported OpenVINO type {port.get_element_type()}")
                ps = port.get_partial_shape()
                if ps.rank.is_dynamic:
                    raise InvalidArgumentError(f"model '{ctx.model_name}' tensor '{name}' has a dynamic rank; list it in config.pbtxt")
                new = group.add(name=name, data_type=int(dt))
                new.dims.extend(_dims(ps)[strip:])

    def create_instance(self, ctx: LoadContext) -> OpenVINOInstance:
        try:
            return OpenVINOInstance(ctx)
        except TritonLiteError:
            raise
        except Exception as exc:  # pragma: no cover - unexpected framework failure
            raise InvalidArgumentError(f"failed to load OpenVINO model '{ctx.model_path}': {_ov_message(exc)}") from exc


def _batch_dim(ov: Any, port: Any) -> bool:
    """Dimension 0 can carry a batch: dynamic, or named N by the model's layout."""
    ps = port.get_partial_shape()
    if ps.rank.is_dynamic or ps.rank.get_length() < 2:
        return False
    if ps[0].is_dynamic:
        return True
    try:
        from openvino import layout_helpers

        layout = layout_helpers.get_layout(port)
        return not layout.empty and layout.has_name("N") and layout.get_index_by_name("N") == 0
    except Exception:
        return False


__all__ = ["OpenVINOBackend", "OpenVINOInstance", "compile_properties"]
