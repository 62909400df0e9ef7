"""PyTorch backend (``platform: "pytorch_libtorch"`` / ``"libtorch"`` / ``"torch_aoti"``, ``backend: "pytorch"``).

Model files (SPEC §4.2): ``model.pt`` is TorchScript (``torch.jit.save``), loaded with
``torch.jit.load``; ``model.pt2`` is either a ``torch.export`` archive (``torch.export.save``, loaded
with ``torch.export.load``) or an AOTInductor package (``torch._inductor.aoti_compile_and_package``,
loaded with ``torch._inductor.aoti_load_package``). The kind is read from the archive's contents, not
from its name; a ``torch.save`` pickle of an eager module is refused with the way to fix it. A model
that names no platform and whose version directory holds only ``model.pt2`` is found too.

Binding, as Triton's PyTorch backend documents it:

- inputs are matched to ``forward()`` argument names when every config input is one; otherwise every
  input must follow ``<name>__<index>`` (``INPUT__0``), the index being the argument position; a
  ``forward(self, inputs: Dict[str, Tensor])`` receives a dict keyed by the config input names. AOTInductor
  packages carry no argument names: ``<name>__<index>`` or config order.
- outputs follow ``<name>__<index>`` (position in the returned tuple/list); a dict return value is
  looked up by the output name; a single tensor is output 0. A name that is neither falls back to its
  position among the config outputs.
- ``TYPE_STRING`` inputs are passed as ``List[str]`` and ``List[str]`` outputs come back as BYTES
  (1-D only, as in Triton).

Execution runs under ``torch.inference_mode()`` (``INFERENCE_MODE: "false"`` uses ``torch.no_grad()``).
Parameters (``string_value``): ``INFERENCE_MODE``, ``DISABLE_OPTIMIZED_EXECUTION``,
``ENABLE_JIT_EXECUTOR``, ``ENABLE_JIT_PROFILING``, ``ENABLE_TENSOR_FUSER`` (applied before each
execution, as Triton does), ``ENABLE_NVFUSER`` (accepted; nvFuser is gone from torch 2.x),
``ENABLE_WEIGHT_SHARING`` (instances on one device share one loaded module), ``ENABLE_CACHE_CLEANING``
(``torch.cuda.empty_cache()`` after each GPU execution), ``INTRA_OP_THREAD_COUNT`` and
``INTER_OP_THREAD_COUNT``.

**Thread counts are process-global in torch** (``torch.set_num_threads`` /
``torch.set_num_interop_threads``), exactly as they are global to Triton's PyTorch backend: the first
model that sets one wins, a later model asking for a different value is logged and ignored, and the
inter-op pool can only be sized before torch first uses it. The JIT switches are process-global too.

KIND_GPU instances put the module and the input tensors on ``cuda:<device_id>`` (outputs come back to
host memory); without a CUDA build of torch or a visible device they are refused with
:class:`~tritonlite.errors.UnavailableError`. KIND_MODEL leaves placement to the model: inputs go
to the device of its first parameter.

Auto-complete fills inputs, outputs and batching for ``torch.export`` programs from the exported
signature (names, dtypes, static dims; symbolic dims become -1). TorchScript files carry no such
information, as in Triton.
"""

from __future__ import annotations

import logging
import re
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tritonlite.backends.base import LoadContext
from tritonlite.backends.batching import FrameworkInstance
from tritonlite.datatypes import DataType
from tritonlite.errors import InternalError, InvalidArgumentError, TritonLiteError, UnavailableError

_log = logging.getLogger("tritonlite.backends.pytorch")

#: Triton's ORT/TRT use 4 when they turn batching on by themselves; we do the same for export programs
DEFAULT_MAX_BATCH_SIZE = 4

_INDEXED = re.compile(r"^(.+)__(\d+)$")

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UnavailableError("the pytorch backend needs torch: pip install 'tritonlite[torch]'") from exc
    return torch


def _parameters(config: Any) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


def _flag(params: Mapping[str, str], key: str, model: str) -> bool | None:
    if key not in params:
        return None
    value = params[key].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidArgumentError(f"parameter '{key}' of model '{model}' must be a boolean (true/false), got '{params[key]}'")


def _count(params: Mapping[str, str], key: str, model: str) -> int | None:
    if key not in params:
        return None
    try:
        n = int(params[key])
    except ValueError:
        raise InvalidArgumentError(f"parameter '{key}' of model '{model}' must be an integer, got '{params[key]}'") from None
    if n < 0:
        raise InvalidArgumentError(f"parameter '{key}' of model '{model}' must not be negative, got {n}")
    return n


# ---- process-global thread settings ---------------------------------------------------------------
_THREADS_LOCK = threading.Lock()
#: what this process has set so far: parameter name -> (value, model that set it)
_THREADS_SET: dict[str, tuple[int, str]] = {}


def _apply_thread_settings(torch: Any, params: Mapping[str, str], model: str) -> None:
    """INTRA_OP_THREAD_COUNT / INTER_OP_THREAD_COUNT: first model wins, as in Triton (torch is process-global)."""
    setters: tuple[tuple[str, Callable[[int], None]], ...] = (
        ("INTRA_OP_THREAD_COUNT", torch.set_num_threads),
        ("INTER_OP_THREAD_COUNT", torch.set_num_interop_threads),
    )
    for key, setter in setters:
        n = _count(params, key, model)
        if n is None or n == 0:  # 0 keeps torch's default, as Triton does
            continue
        with _THREADS_LOCK:
            done = _THREADS_SET.get(key)
            if done is not None:
                if done[0] != n:
                    _log.warning(
                        "model '%s' asks for %s=%d but torch thread counts are process-global and model '%s' "
                        "already set %d; keeping %d", model, key, n, done[1], done[0], done[0],
                    )
                continue
            try:
                setter(n)
            except RuntimeError as exc:  # inter-op pool already started: only settable once, early
                _log.warning("model '%s': cannot apply %s=%d (%s); torch keeps its current setting", model, key, n, exc)
            _THREADS_SET[key] = (n, model)


# ---- model files ---------------------------------------------------------------------------------
TORCHSCRIPT, EXPORT, AOTI = "torchscript", "export", "aoti"


def _resolve_model_file(ctx: LoadContext) -> Path:
    """The model file; a pytorch model found through ``model.pt2`` alone needs no explicit filename."""
    path = ctx.model_path
    if path.exists():
        return path
    cfg = ctx.config
    if path.name in ("model.pt", "") and not cfg.platform:
        alt = ctx.version_dir / "model.pt2"
        if alt.is_file():
            return alt
    raise InvalidArgumentError(f"unable to find PyTorch model file '{path}' for model '{ctx.model_name}'")


def detect_format(path: Path) -> str:
    """TorchScript, torch.export archive or AOTInductor package, by the archive's entries."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, IsADirectoryError) as exc:
        raise InvalidArgumentError(f"'{path}' is not a TorchScript file or a PT2 archive: {exc}") from None
    if any("/data/aotinductor/" in n for n in names):
        return AOTI
    if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
        return EXPORT
    if any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names):
        return TORCHSCRIPT
    if any(n.endswith("data.pkl") for n in names):
        raise InvalidArgumentError(
            f"'{path}' is a torch.save() pickle, not a TorchScript or torch.export program: save the model with "
            "torch.jit.save(torch.jit.script(m), 'model.pt') or torch.export.save(torch.export.export(m, args), 'model.pt2')"
        )
    raise InvalidArgumentError(f"'{path}' is neither a TorchScript file nor a torch.export / AOTInductor archive")


def _load_export(torch: Any, path: Path) -> Any:
    with open(path, "rb") as f:  # a file object: torch.export.load insists on a .pt2 suffix for paths
        return torch.export.load(f)


# ---- dtypes ------------------------------------------------------------------------------------------
def _torch_types(torch: Any) -> dict[Any, DataType]:
    return {
        torch.bool: DataType.BOOL,
        torch.uint8: DataType.UINT8,
        torch.int8: DataType.INT8,
        torch.int16: DataType.INT16,
        torch.int32: DataType.INT32,
        torch.int64: DataType.INT64,
        torch.float16: DataType.FP16,
        torch.float32: DataType.FP32,
        torch.float64: DataType.FP64,
        torch.bfloat16: DataType.BF16,
        getattr(torch, "uint16", None): DataType.UINT16,
        getattr(torch, "uint32", None): DataType.UINT32,
        getattr(torch, "uint64", None): DataType.UINT64,
    }


def _to_tensor(torch: Any, arr: np.ndarray, bf16: bool) -> Any:
    if bf16:  # BF16 travels as uint16 bit patterns
        return torch.from_numpy(np.ascontiguousarray(arr).view(np.int16)).view(torch.bfloat16)
    if not arr.flags.writeable:  # torch warns on read-only buffers; the model must not see shared memory change
        arr = arr.copy()
    return torch.from_numpy(arr)


def _to_numpy(torch: Any, value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        t = value.detach() if value.requires_grad else value
        if not t.is_cpu:
            t = t.cpu()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(np.uint16)
        return t.numpy()
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, bytes)) for v in value):
        out = np.empty(len(value), dtype=object)
        out[:] = [v if isinstance(v, bytes) else v.encode("utf-8") for v in value]
        return out
    if isinstance(value, (bool, int, float)):
        return np.asarray(value)
    raise InternalError(f"output '{name}' is a {type(value).__name__}, not a tensor or a list of strings")


# ---- the instance --------------------------------------------------------------------------------
class _Binding:
    """How config inputs map to the callable's arguments."""

    def __init__(self, mode: str, order: list[str], dict_arg: str = "", prefix: bool = True) -> None:
        self.mode = mode  # "names" (kwargs), "positional", "dict"
        self.order = order  # config input name per argument position
        self.dict_arg = dict_arg
        #: "names": the inputs are the leading forward() arguments, so a full set can go positionally
        self.prefix = prefix


def _bind_inputs(model: str, config_inputs: Sequence[str], arg_names: Sequence[str] | None, dict_arg: bool, kind: str) -> _Binding:
    names = list(config_inputs)
    if dict_arg and arg_names:
        return _Binding("dict", names, arg_names[0])
    if arg_names is not None and names and all(n in arg_names for n in names):
        if kind == TORCHSCRIPT:
            order = [a for a in arg_names if a in names]
            return _Binding("names", order, prefix=order == list(arg_names[: len(order)]))
        missing = [a for a in arg_names if a not in names]
        if missing:  # exported programs are called positionally and take every argument
            raise InvalidArgumentError(f"model '{model}': forward() argument(s) {missing} have no config input")
        return _Binding("positional", list(arg_names))
    indexed = [_INDEXED.match(n) for n in names]
    if names and all(indexed):
        by_index: dict[int, str] = {}
        for n, m in zip(names, indexed):
            i = int(m.group(2))  # type: ignore[union-attr]
            if i in by_index:
                raise InvalidArgumentError(f"model '{model}': inputs '{by_index[i]}' and '{n}' both claim forward() argument {i}")
            by_index[i] = n
        if sorted(by_index) != list(range(len(by_index))):
            raise InvalidArgumentError(
                f"model '{model}': input indices {sorted(by_index)} must be 0..{len(by_index) - 1} (Triton's '<name>__<index>' convention)"
            )
        if arg_names is not None and len(by_index) > len(arg_names):
            raise InvalidArgumentError(f"model '{model}' lists {len(by_index)} inputs but forward() takes {len(arg_names)} arguments")
        return _Binding("positional", [by_index[i] for i in range(len(by_index))])
    if arg_names is None:  # AOTInductor: no names in the package, config order it is
        return _Binding("positional", names)
    raise InvalidArgumentError(
        f"model '{model}': input names {names} match neither the forward() arguments {list(arg_names)} nor "
        "Triton's '<name>__<index>' convention (e.g. INPUT__0)"
    )


class PyTorchInstance(FrameworkInstance):
    """One loaded TorchScript module, exported program or AOTInductor package on one device."""

    def __init__(self, ctx: LoadContext, shared: "_SharedModules | None" = None) -> None:
        super().__init__(ctx.config)
        torch = self.torch = _import_torch()
        cfg = ctx.config
        name = ctx.model_name
        params = _parameters(cfg)
        self.inference_mode = _flag(params, "INFERENCE_MODE", name) is not False
        self.optimized = not bool(_flag(params, "DISABLE_OPTIMIZED_EXECUTION", name))
        self.jit_switches: list[tuple[Callable[[bool], Any], bool]] = []
        for key, attr in (
            ("ENABLE_JIT_PROFILING", "_jit_set_profiling_mode"),
            ("ENABLE_JIT_EXECUTOR", "_jit_set_profiling_executor"),
            ("ENABLE_TENSOR_FUSER", "_jit_set_texpr_fuser_enabled"),
        ):
            value = _flag(params, key, name)
            fn = getattr(torch._C, attr, None)
            if value is not None and fn is not None:
                self.jit_switches.append((fn, value))
        if _flag(params, "ENABLE_NVFUSER", name):
            _log.info("model '%s': ENABLE_NVFUSER is ignored (nvFuser is not part of torch 2.x)", name)
        self.cache_cleaning = bool(_flag(params, "ENABLE_CACHE_CLEANING", name))
        _apply_thread_settings(torch, params, name)

        self.device = self._device(torch, ctx)
        path = _resolve_model_file(ctx)
        self.kind = detect_format(path)
        self._shared = shared if _flag(params, "ENABLE_WEIGHT_SHARING", name) else None
        self._share_key = (name, ctx.model_version, str(path), str(self.device))
        if self._shared is not None:
            self.fn, arg_names, dict_arg = self._shared.acquire(self._share_key, lambda: self._load(torch, path, ctx))
        else:
            self.fn, arg_names, dict_arg = self._load(torch, path, ctx)
        try:
            self.binding = _bind_inputs(name, [i.name for i in cfg.input], arg_names, dict_arg, self.kind)
        except BaseException:
            if self._shared is not None:  # the engine never sees this instance, so close() will not run
                self._shared.release(self._share_key)
            raise
        self.output_order = [o.name for o in cfg.output]
        #: output name -> position in a returned tuple/list: '<name>__<index>', else config order
        self._output_index = {
            n: (int(m.group(2)) if (m := _INDEXED.match(n)) else i) for i, n in enumerate(self.output_order)
        }
        self.bf16_inputs = {i.name for i in cfg.input if i.data_type == DataType.BF16}
        self.string_inputs = {i.name for i in cfg.input if i.data_type == DataType.BYTES}
        if self.device is None and self.kind == TORCHSCRIPT:  # KIND_MODEL: follow the module's parameters
            first = next(iter(self.fn.parameters()), None)
            self.input_device = first.device if first is not None else torch.device("cpu")
        else:
            self.input_device = self.device
        self._needs_move = self.input_device is not None and self.input_device.type != "cpu"
        self._special_inputs = self.bf16_inputs | self.string_inputs
        self._fast = self.inference_mode and self.optimized

    @staticmethod
    def _device(torch: Any, ctx: LoadContext) -> Any:
        if ctx.instance_kind == "GPU":
            if not torch.cuda.is_available():
                raise UnavailableError(
                    f"instance '{ctx.instance_name}' of model '{ctx.model_name}' is KIND_GPU but torch {torch.__version__} "
                    "sees no CUDA device; install a CUDA build of torch on a machine with a GPU, or use KIND_CPU"
                )
            if ctx.device_id >= torch.cuda.device_count():
                raise UnavailableError(
                    f"instance '{ctx.instance_name}' of model '{ctx.model_name}' asks for GPU {ctx.device_id} "
                    f"but torch sees {torch.cuda.device_count()}"
                )
            return torch.device("cuda", ctx.device_id)
        if ctx.instance_kind == "MODEL":
            return None
        return torch.device("cpu")

    def _load(self, torch: Any, path: Path, ctx: LoadContext) -> tuple[Any, list[str] | None, bool]:
        """(callable, forward argument names or None, takes-one-dict) for the file's kind."""
        try:
            if self.kind == TORCHSCRIPT:
                with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; serving it is the point here
                    warnings.simplefilter("ignore", DeprecationWarning)
                    module = torch.jit.load(str(path), map_location=self.device)
                module.eval()
                args = [(a.name, str(a.type)) for a in module.forward.schema.arguments[1:]]
                dict_arg = len(args) == 1 and args[0][1].startswith("Dict[str, Tensor]")
                return module, [a for a, _ in args], dict_arg
            if self.kind == EXPORT:
                ep = _load_export(torch, path)
                if self.device is not None and self.device.type != "cpu":
                    from torch.export.passes import move_to_device_pass

                    ep = move_to_device_pass(ep, self.device)
                module = ep.module()
                return module, _export_arg_names(ep, module), False
            # AOTInductor: compiled for one device; refuse a mismatch rather than crash inside it
            from torch._inductor import aoti_load_package

            index = self.device.index if self.device is not None and self.device.type == "cuda" else -1
            runner = aoti_load_package(str(path), device_index=index if index is not None else -1)
            meta = runner.get_metadata() if hasattr(runner, "get_metadata") else {}
            built_for = str(meta.get("AOTI_DEVICE_KEY", "")).lower()
            wanted = "cpu" if self.device is None or self.device.type == "cpu" else "cuda"
            if built_for and not built_for.startswith(wanted):
                raise UnavailableError(
                    f"AOTInductor package '{path}' was compiled for '{built_for}' but instance '{ctx.instance_name}' "
                    f"of model '{ctx.model_name}' runs on {wanted}"
                )
            return runner, None, False
        except TritonLiteError:
            raise
        except Exception as exc:
            raise InvalidArgumentError(f"failed to load PyTorch model '{path}' ({self.kind}): {exc}") from exc

    # ---- execution ----------------------------------------------------------------------------------
    def _convert(self, name: str, arr: np.ndarray) -> Any:
        if name in self.string_inputs:
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in arr.reshape(-1)]
        return _to_tensor(self.torch, arr, name in self.bf16_inputs)

    def _call(self, tensors: dict[str, Any]) -> Any:
        b = self.binding
        if b.mode == "dict":
            return self.fn(tensors)
        if len(tensors) == len(b.order) and (b.mode == "positional" or b.prefix):
            return self.fn(*[tensors[n] for n in b.order])
        if b.mode == "names":
            return self.fn(**tensors)
        args = []
        for n in b.order:
            if n not in tensors:
                break  # a trailing optional input left out
            args.append(tensors[n])
        return self.fn(*args)

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str]) -> Mapping[str, np.ndarray]:
        torch = self.torch
        special = self._special_inputs
        move = self.input_device if self._needs_move else None
        tensors: dict[str, Any] = {}
        for name, arr in feeds.items():
            if name in special:
                t = self._convert(name, arr)
            else:  # torch warns on read-only buffers; the model must not see shared memory change
                t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
            if move is not None and not isinstance(t, list):
                t = t.to(move, non_blocking=True)
            tensors[name] = t
        for fn, value in self.jit_switches:
            fn(value)
        try:
            if self._fast:
                with torch.inference_mode():
                    result = self._call(tensors)
            else:
                with torch.inference_mode() if self.inference_mode else torch.no_grad(), torch.jit.optimized_execution(self.optimized):
                    result = self._call(tensors)
        except TritonLiteError:
            raise
        except Exception as exc:
            raise InvalidArgumentError(f"PyTorch execute failure: {_first_line(exc)}") from exc
        out = self._outputs(result, output_names or self.output_order)
        if self.cache_cleaning and move is not None:
            torch.cuda.empty_cache()
        return out

    def _outputs(self, result: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
        torch = self.torch
        out: dict[str, np.ndarray] = {}
        if isinstance(result, dict):
            for n in names:
                if n not in result:
                    raise InternalError(f"the model returned no output '{n}' (it returned keys {sorted(result)})")
                out[n] = _to_numpy(torch, result[n], n)
            return out
        if isinstance(result, (tuple, list)) and not (result and isinstance(result[0], str)):
            seq: Sequence[Any] = result
        else:  # one tensor, or one list of strings
            seq = (result,)
        index = self._output_index
        for n in names:
            i = index.get(n, -1)
            if not 0 <= i < len(seq):
                raise InternalError(f"output '{n}' refers to result {i} but the model returned {len(seq)} value(s)")
            out[n] = _to_numpy(torch, seq[i], n)
        return out

    def close(self) -> None:
        if self._shared is not None:
            self._shared.release(self._share_key)
        self.fn = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    # TorchScript errors carry a long traceback; the last line names the problem
    return lines[-1].strip() if len(lines) > 1 and "Traceback" in text else lines[0].strip()


class _SharedModules:
    """ENABLE_WEIGHT_SHARING: one loaded module per (model, version, file, device), reference-counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[Any, ...], list[Any]] = {}

    def acquire(self, key: tuple[Any, ...], load: Callable[[], Any]) -> Any:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                item = self._items[key] = [load(), 0]
            item[1] += 1
            return item[0]

    def release(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                item[1] -= 1
                if item[1] <= 0:
                    del self._items[key]


# ---- auto-complete -------------------------------------------------------------------------------
def _export_arg_names(ep: Any, module: Any = None) -> list[str]:
    """forward() argument names of an exported program (placeholder names when they do not line up)."""
    placeholders = list(ep.graph_signature.user_inputs)
    try:
        import inspect

        params = list(inspect.signature((module if module is not None else ep.module()).forward).parameters)
    except (TypeError, ValueError):
        return placeholders
    return params if len(params) == len(placeholders) else placeholders


def _export_io(torch: Any, ep: Any) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """(name, fake tensor) for the user inputs and outputs of an exported program."""
    placeholders = {n.name: n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder"}
    names_in = _export_arg_names(ep)
    ins = [(a, placeholders.get(p)) for a, p in zip(names_in, ep.graph_signature.user_inputs)]
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    values = [a.meta.get("val") if hasattr(a, "meta") else None for a in out_node.args[0]]
    # user outputs come first; mutated buffers etc. are not user outputs
    n_user = len(ep.graph_signature.user_outputs)
    values = values[len(values) - n_user :] if len(values) >= n_user else values
    spec = ep.call_spec.out_spec
    keys: list[str] | None = None
    if spec is not None and getattr(spec, "type", None) is dict and spec.context:
        keys = [str(k) for k in spec.context]
    names = keys if keys is not None and len(keys) == len(values) else [f"OUTPUT__{i}" for i in range(len(values))]
    return ins, list(zip(names, values))


def _is_static(d: Any) -> bool:
    return isinstance(d, int)  # symbolic sizes are torch.SymInt, not int


def _dims(val: Any) -> list[int]:
    return [int(d) if _is_static(d) else -1 for d in val.shape]


class PyTorchBackend:
    """Registered as ``pytorch``; auto-completes ``torch.export`` programs."""

    name = "pytorch"

    def __init__(self) -> None:
        self._shared = _SharedModules()

    def auto_complete_config(self, ctx: LoadContext) -> None:
        cfg = ctx.config
        try:
            path = _resolve_model_file(ctx)
        except InvalidArgumentError:
            return  # the load reports the missing file
        if path.name == "model.pt2" and ctx.model_path.name != "model.pt2" and not cfg.default_model_filename:
            cfg.default_model_filename = "model.pt2"
        if detect_format(path) != EXPORT:
            return  # TorchScript and AOTInductor files do not tell their I/O
        torch = _import_torch()
        try:
            ep = _load_export(torch, path)
            ins, outs = _export_io(torch, ep)
        except Exception as exc:
            raise InvalidArgumentError(f"failed to read exported program '{path}' for auto-complete: {exc}") from exc
        types = _torch_types(torch)
        fully_auto = not cfg.input and not cfg.output
        tensors = [v for _, v in ins + outs]
        batchable = bool(tensors) and all(v is not None and len(v.shape) >= 2 and not _is_static(v.shape[0]) for v in tensors)
        if fully_auto and cfg.max_batch_size == 0 and batchable:
            cfg.max_batch_size = DEFAULT_MAX_BATCH_SIZE
            if cfg.WhichOneof("scheduling_choice") is None:
                cfg.dynamic_batching.SetInParent()
        strip = 1 if cfg.max_batch_size > 0 else 0
        for group, items in ((cfg.input, ins), (cfg.output, outs)):
            known = {t.name for t in group}
            if group and len(known) != len(items):
                continue  # a partial list: leave it to the user
            for name, val in items:
                if name in known or val is None:
                    continue
                dt = types.get(val.dtype)
                if dt is None:
                    raise InvalidArgumentError(f"model '{ctx.model_name}' tensor '{name}' has unsupported dtype {val.dtype}")
                new = group.add(name=name, data_type=int(dt))
                new.dims.extend(_dims(val)[strip:])

    def create_instance(self, ctx: LoadContext) -> PyTorchInstance:
        return PyTorchInstance(ctx, self._shared)


__all__ = ["PyTorchBackend", "PyTorchInstance", "detect_format"]
