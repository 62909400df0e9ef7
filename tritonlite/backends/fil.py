"""FIL backend (``backend: "fil"``): tree ensembles through treelite 4 and its GTIL predictor, on the CPU.

``parameters.model_type`` picks the loader and the default file (SPEC §4.2):

| model_type | file | loader |
|---|---|---|
| ``xgboost_ubj`` (default) | ``xgboost.ubj`` | ``treelite.frontend.load_xgboost_model(format_choice="ubjson")`` |
| ``xgboost_json`` | ``xgboost.json`` | ``load_xgboost_model(format_choice="json")`` (``xgboost_allow_unknown_field``) |
| ``xgboost`` | ``xgboost.model`` | ``load_xgboost_model_legacy_binary``; XGBoost ≥ 2.1 writes UBJSON whatever the suffix, so a file that is not legacy binary is read as JSON/UBJSON |
| ``lightgbm`` | ``model.txt`` | ``load_lightgbm_model`` |
| ``treelite_checkpoint`` | ``checkpoint.tl`` | ``treelite.Model.deserialize`` — also how scikit-learn forests arrive (``treelite.sklearn.import_model(m).serialize(path)``) |

Outputs follow FIL's rules (fil_backend ``docs/model_config.md``, ``src/tl_model.h``), in FP32:

- ``predict_proba: "true"``: class probabilities, ``[n, num_class]``; a binary model with one output
  (XGBoost/LightGBM ``binary``) gives ``[n, 2]`` = ``[1 - p, p]``;
- ``output_class: "true"`` (or ``is_classifier``) without ``predict_proba``: class ids, ``[n, 1]`` —
  ``p > threshold`` (default 0.5) for binary models, the argmax for multi-class ones;
- otherwise (regression): the prediction, ``[n, 1]`` (``[n, num_target]`` for several targets).

The array is reshaped to the config's output dims when the sizes agree (``dims: [1]`` gives ``[n, 1]``).
``predict_leaf: "true"`` (a tritonlite extension) returns the leaf id per tree, ``[n, num_tree]``,
through ``treelite.gtil.predict_leaf``. ``cpu_nthread`` sets GTIL's thread count (default: one thread
for batches under 256 rows, where threads cost more than they give, else every core).

GPU tuning parameters (``storage_type``, ``algo``, ``threads_per_tree``, ``blocks_per_sm``,
``transfer_threshold``, ``use_experimental_optimizations``) are accepted and ignored: GTIL has no such
knobs and predictions do not depend on them. This backend runs on the CPU only: KIND_AUTO groups
become KIND_CPU during auto-complete, and a KIND_GPU instance runs on the CPU with a warning.

Auto-complete fills ``input__0`` (FP32, ``[num_feature]``), ``output__0`` (FP32, dims from the rules
above) and, when the config has neither, ``max_batch_size: 4`` with ``dynamic_batching {}``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from tritonlite.backends.base import LoadContext
from tritonlite.backends.batching import FrameworkInstance
from tritonlite.config.filenames import FIL_DEFAULT_MODEL_TYPE
from tritonlite.datatypes import DataType
from tritonlite.errors import InvalidArgumentError, TritonLiteError, UnavailableError

_log = logging.getLogger("tritonlite.backends.fil")

DEFAULT_MAX_BATCH_SIZE = 4
#: below this many rows GTIL runs on one thread (thread start-up costs more than it saves)
SMALL_BATCH_ROWS = 256

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_GPU_TUNING = ("storage_type", "algo", "threads_per_tree", "blocks_per_sm", "transfer_threshold", "use_experimental_optimizations")
MODEL_TYPES = ("xgboost", "xgboost_json", "xgboost_ubj", "lightgbm", "treelite_checkpoint")


def _import_treelite() -> Any:
    try:
        import treelite
        import treelite.gtil
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise UnavailableError("the fil backend needs treelite 4: pip install 'tritonlite[fil]'") from exc
    return treelite


def _parameters(config: Any) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


def _flag(params: Mapping[str, str], key: str, model: str, default: bool = False) -> bool:
    if key not in params:
        return default
    value = params[key].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidArgumentError(f"parameter '{key}' of model '{model}' must be 'true' or 'false', got '{params[key]}'")


class FILOptions:
    """The FIL parameters of one config, parsed once."""

    def __init__(self, config: Any) -> None:
        params = _parameters(config)
        name = config.name
        self.model_type = params.get("model_type", FIL_DEFAULT_MODEL_TYPE).strip()
        if self.model_type not in MODEL_TYPES:
            raise InvalidArgumentError(f"unknown FIL model_type '{self.model_type}' for model '{name}'; expected one of {', '.join(MODEL_TYPES)}")
        self.output_class = _flag(params, "output_class", name) or _flag(params, "is_classifier", name)
        self.predict_proba = _flag(params, "predict_proba", name)
        self.predict_leaf = _flag(params, "predict_leaf", name)
        self.allow_unknown_field = _flag(params, "xgboost_allow_unknown_field", name)
        try:
            self.threshold = float(params.get("threshold", "0.5"))
        except ValueError:
            raise InvalidArgumentError(f"parameter 'threshold' of model '{name}' must be a number, got '{params['threshold']}'") from None
        self.nthread = 0  # 0: decide per batch
        if "cpu_nthread" in params:
            try:
                self.nthread = int(params["cpu_nthread"])
            except ValueError:
                raise InvalidArgumentError(f"parameter 'cpu_nthread' of model '{name}' must be an integer, got '{params['cpu_nthread']}'") from None
        self.ignored = [k for k in _GPU_TUNING if k in params]


def load_model(treelite: Any, path: Path, opts: FILOptions) -> Any:
    """A treelite Model from ``path`` as ``model_type`` says."""
    if not path.is_file():
        raise InvalidArgumentError(f"unable to find FIL model file '{path}' (model_type '{opts.model_type}')")
    fe = treelite.frontend
    try:
        if opts.model_type == "xgboost_json":
            return fe.load_xgboost_model(path, format_choice="json", allow_unknown_field=opts.allow_unknown_field)
        if opts.model_type == "xgboost_ubj":
            return fe.load_xgboost_model(path, format_choice="ubjson", allow_unknown_field=opts.allow_unknown_field)
        if opts.model_type == "xgboost":
            head = path.read_bytes()[:1]
            if head in (b"{", b"["):  # JSON or UBJSON: what XGBoost >= 2.1 writes for any suffix
                return fe.load_xgboost_model(path, format_choice="inspect", allow_unknown_field=opts.allow_unknown_field)
            return fe.load_xgboost_model_legacy_binary(path)
        if opts.model_type == "lightgbm":
            return fe.load_lightgbm_model(path)
        return treelite.Model.deserialize(str(path))
    except Exception as exc:
        raise InvalidArgumentError(f"failed to load FIL model '{path}' as {opts.model_type}: {exc}") from exc


class ModelInfo:
    """What the treelite header says about the model's outputs."""

    def __init__(self, model: Any) -> None:
        hdr = model.get_header_accessor()
        self.num_feature = int(model.num_feature)
        self.num_tree = int(model.num_tree)
        self.num_target = int(hdr.get_field("num_target")[0])
        self.num_class = int(np.max(hdr.get_field("num_class")))

    def output_width(self, opts: FILOptions) -> int:
        if opts.predict_leaf:
            return self.num_tree
        if opts.predict_proba:
            return 2 if self.num_class == 1 else self.num_class * self.num_target
        if opts.output_class:
            return self.num_target
        return self.num_target * self.num_class


def predict(treelite: Any, model: Any, info: ModelInfo, opts: FILOptions, x: np.ndarray) -> np.ndarray:
    """FIL's output for rows ``x`` as a 2-D float32 array ``[n, width]``."""
    n = x.shape[0]
    nthread = opts.nthread if opts.nthread else (1 if n < SMALL_BATCH_ROWS else -1)
    gtil = treelite.gtil
    if opts.predict_leaf:
        return gtil.predict_leaf(model, x, nthread=nthread).astype(np.float32, copy=False).reshape(n, -1)
    raw = gtil.predict(model, x, nthread=nthread)  # (n, num_target, max_num_class), post-processed
    if opts.predict_proba:
        if info.num_class == 1:
            p = raw.reshape(n, -1)[:, 0]
            out = np.empty((n, 2), dtype=np.float32)
            out[:, 1] = p
            np.subtract(1.0, p, out=out[:, 0], casting="unsafe")
            return out
        return raw.reshape(n, -1).astype(np.float32, copy=False)
    if opts.output_class:
        if info.num_class == 1:
            return (raw.reshape(n, -1) > opts.threshold).astype(np.float32)
        return np.argmax(raw, axis=2).astype(np.float32).reshape(n, -1)
    return raw.reshape(n, -1).astype(np.float32, copy=False)


class FILInstance(FrameworkInstance):
    """One treelite model; GTIL predicts on the CPU."""

    def __init__(self, ctx: LoadContext) -> None:
        super().__init__(ctx.config)
        cfg = ctx.config
        self.treelite = _import_treelite()
        self.opts = FILOptions(cfg)
        if self.opts.ignored:
            _log.info("model '%s': FIL GPU tuning parameter(s) %s accepted and ignored (treelite GTIL runs on the CPU)", ctx.model_name, ", ".join(self.opts.ignored))
        if ctx.instance_kind == "GPU":
            _log.warning(
                "instance '%s' of model '%s' is KIND_GPU; tritonlite's FIL backend predicts with treelite GTIL on the CPU "
                "(same results)", ctx.instance_name, ctx.model_name,
            )
        self.model = load_model(self.treelite, ctx.model_path, self.opts)
        self.info = ModelInfo(self.model)
        if len(cfg.input) != 1 or len(cfg.output) < 1:
            raise InvalidArgumentError(f"FIL model '{ctx.model_name}' needs one input (input__0) and one output (output__0)")
        self.input_name = cfg.input[0].name
        self.output_name = cfg.output[0].name
        out = cfg.output[0]
        self.output_dtype = DataType(out.data_type).numpy_dtype if out.data_type in (DataType.FP32, DataType.FP64) else np.dtype(np.float32)
        self.fil_output_dims = tuple(int(d) for d in out.dims)
        self.batching = cfg.max_batch_size > 0
        dims = [int(d) for d in cfg.input[0].dims]
        if dims and dims[-1] > 0 and dims[-1] != self.info.num_feature:
            raise InvalidArgumentError(
                f"FIL model '{ctx.model_name}': input '{self.input_name}' has {dims[-1]} features in config.pbtxt "
                f"but the model was trained on {self.info.num_feature}"
            )

    def run(self, feeds: Mapping[str, np.ndarray], output_names: Sequence[str]) -> Mapping[str, np.ndarray]:
        x = feeds[self.input_name]
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float32)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        elif x.ndim != 2:
            x = x.reshape(x.shape[0], -1)
        if x.shape[1] != self.info.num_feature:
            raise InvalidArgumentError(f"FIL model expects {self.info.num_feature} features per row, got {x.shape[1]}")
        x = np.ascontiguousarray(x)
        try:
            out = predict(self.treelite, self.model, self.info, self.opts, x)
        except TritonLiteError:
            raise
        except Exception as exc:
            raise InvalidArgumentError(f"FIL predict failed: {exc}") from exc
        return {self.output_name: self._fit(out.astype(self.output_dtype, copy=False))}

    def _fit(self, out: np.ndarray) -> np.ndarray:
        """Shape the [n, width] result as the config's output dims say, when the sizes agree."""
        shape = ([out.shape[0]] if self.batching else []) + list(self.fil_output_dims)
        if shape.count(-1) > 1 or not shape:
            return out
        try:
            return out.reshape(shape)
        except ValueError:
            return out

    def close(self) -> None:
        self.model = None


class FILBackend:
    """Registered as ``fil``; auto-completes input__0 / output__0 from the model."""

    name = "fil"

    def auto_complete_config(self, ctx: LoadContext) -> None:
        cfg = ctx.config
        for group in cfg.instance_group:  # GTIL predicts on the CPU
            if group.kind == group.KIND_AUTO:
                group.kind = group.KIND_CPU
        if cfg.input and cfg.output:
            return
        opts = FILOptions(cfg)
        if not ctx.model_path.is_file():
            return  # the load reports it
        treelite = _import_treelite()
        info = ModelInfo(load_model(treelite, ctx.model_path, opts))
        if not cfg.input and not cfg.output and cfg.max_batch_size == 0:
            cfg.max_batch_size = DEFAULT_MAX_BATCH_SIZE
            if cfg.WhichOneof("scheduling_choice") is None:
                cfg.dynamic_batching.SetInParent()
        lead = [] if cfg.max_batch_size > 0 else [-1]
        if not cfg.input:
            cfg.input.add(name="input__0", data_type=int(DataType.FP32)).dims.extend(lead + [info.num_feature])
        if not cfg.output:
            cfg.output.add(name="output__0", data_type=int(DataType.FP32)).dims.extend(lead + [info.output_width(opts)])

    def create_instance(self, ctx: LoadContext) -> FILInstance:
        return FILInstance(ctx)


__all__ = ["FILBackend", "FILInstance", "FILOptions", "ModelInfo", "load_model", "predict"]
