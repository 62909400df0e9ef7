"""Checks Triton makes before loading a model (core ``ValidateModelConfig``, ``ValidateIOShape``).

Run after :func:`normalize`. The first broken rule raises :class:`InvalidArgumentError` whose
message names the source file and the offending field; wordings live in ``messages.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tritonlite.config import messages as msg
from tritonlite.errors import InvalidArgumentError
from tritonlite.protos.model_config_pb2 import (
    DataType,
    ModelConfig,
    ModelInput,
    ModelOutput,
    ModelQueuePolicy,
    ModelSequenceBatching,
)

WILDCARD_DIM = -1

_Control = ModelSequenceBatching.Control
_CORRID_TYPES = frozenset(
    {
        DataType.TYPE_UINT64,
        DataType.TYPE_INT64,
        DataType.TYPE_UINT32,
        DataType.TYPE_INT32,
        DataType.TYPE_STRING,
    }
)


class _Fail(Exception):
    """Internal: carries a rule message up to :func:`validate`, which adds the source."""


def validate(cfg: ModelConfig, *, source: str, model_dir_name: str | None) -> None:
    """Raise :class:`InvalidArgumentError` for the first rule ``cfg`` breaks; return otherwise."""
    try:
        _check(cfg, model_dir_name)
    except _Fail as exc:
        raise InvalidArgumentError(
            msg.fmt(msg.INVALID_CONFIG, source=source, detail=exc.args[0])
        ) from None


def _fail(template: str, **values: object) -> _Fail:
    return _Fail(msg.fmt(template, **values))


def _check(cfg: ModelConfig, model_dir_name: str | None) -> None:
    model = cfg.name
    if model_dir_name is not None and model != model_dir_name:
        raise _fail(msg.DIR_NAME_MISMATCH, dir=model_dir_name, model=model)
    if not cfg.platform and not cfg.backend:
        raise _fail(msg.NO_PLATFORM_OR_BACKEND, model=model)
    if cfg.max_batch_size < 0:
        raise _fail(msg.NEGATIVE_MAX_BATCH, model=model)
    _check_ios("input", cfg.input, cfg)
    _check_ios("output", cfg.output, cfg)
    if cfg.HasField("dynamic_batching"):
        _check_dynamic_batching(cfg)
    if cfg.HasField("sequence_batching"):
        if cfg.response_cache.enable:
            raise _fail(msg.CACHE_SEQUENCE, model=model)
        _check_controls(cfg)
    if cfg.model_transaction_policy.decoupled and cfg.response_cache.enable:
        raise _fail(msg.CACHE_DECOUPLED, model=model)
    _check_ensemble(cfg)


def _check_ios(io: str, tensors: Iterable[ModelInput | ModelOutput], cfg: ModelConfig) -> None:
    seen: set[str] = set()
    for t in tensors:
        if not t.name:
            raise _fail(msg.IO_NO_NAME, io=io)
        if t.name in seen:
            raise _fail(msg.IO_DUPLICATE, io=io, name=t.name, model=cfg.name)
        seen.add(t.name)
        if t.data_type == DataType.TYPE_INVALID:
            raise _fail(msg.IO_NO_DATA_TYPE, io=io, name=t.name)
        _check_shape(io, t, cfg.max_batch_size)


def _check_shape(io: str, t: ModelInput | ModelOutput, max_batch_size: int) -> None:
    has_reshape = t.HasField("reshape")
    if not t.dims and not has_reshape:
        raise _fail(msg.IO_NO_DIMS, io=io, name=t.name)
    if any(d < 1 and d != WILDCARD_DIM for d in t.dims):
        raise _fail(msg.IO_BAD_DIM, io=io, name=t.name)
    if not has_reshape:
        return
    shape = list(t.reshape.shape)
    if not shape and max_batch_size == 0:
        raise _fail(msg.IO_EMPTY_RESHAPE_NOBATCH, io=io, name=t.name)
    if any(d < 1 and d != WILDCARD_DIM for d in shape):
        raise _fail(msg.IO_BAD_RESHAPE_DIM, io=io, name=t.name)
    if not _same_size(list(t.dims), shape):
        raise _fail(msg.IO_RESHAPE_MISMATCH, io=io, name=t.name)


def _same_size(dims: Sequence[int], shape: Sequence[int]) -> bool:
    """Element counts agree; with -1 on both sides, each run between wildcards must agree."""
    if not shape:  # reshape [] stands for one element
        return _product(dims) == 1 and WILDCARD_DIM not in dims
    return _runs(dims) == _runs(shape)


def _runs(dims: Sequence[int]) -> list[int]:
    """Products of the stretches separated by -1 (one entry when there is no wildcard)."""
    runs, current = [], 1
    for d in dims:
        if d == WILDCARD_DIM:
            runs.append(current)
            current = 1
        else:
            current *= d
    runs.append(current)
    return runs


def _product(dims: Iterable[int]) -> int:
    out = 1
    for d in dims:
        out *= d
    return out


def _check_dynamic_batching(cfg: ModelConfig) -> None:
    db, model = cfg.dynamic_batching, cfg.name
    for size in db.preferred_batch_size:
        if size <= 0:
            raise _fail(msg.PREFERRED_NOT_POSITIVE, model=model)
        if size > cfg.max_batch_size:
            raise _fail(msg.PREFERRED_OVER_MAX, model=model)
    levels = db.priority_levels
    if levels > 0:
        if not 1 <= db.default_priority_level <= levels:
            raise _fail(msg.DEFAULT_PRIORITY_RANGE, levels=levels, model=model)
        for level in db.priority_queue_policy:
            if not 1 <= level <= levels:
                raise _fail(msg.QUEUE_POLICY_RANGE, levels=levels, model=model)
    if db.preserve_ordering:
        if levels > 1:
            raise _fail(msg.PRESERVE_ORDERING_LEVELS, model=model)
        policies = [db.default_queue_policy, *db.priority_queue_policy.values()]
        if any(_delays(p) for p in policies):
            raise _fail(msg.PRESERVE_ORDERING_DELAY, model=model)


def _delays(policy: ModelQueuePolicy) -> bool:
    return (
        policy.default_timeout_microseconds != 0
        and policy.timeout_action == ModelQueuePolicy.DELAY
    )


def _check_controls(cfg: ModelConfig) -> None:
    model = cfg.name
    for control_input in cfg.sequence_batching.control_input:
        name = control_input.name
        if not name:
            raise _fail(msg.CONTROL_NO_NAME, model=model)
        for control in control_input.control:
            lists = [control.int32_false_true, control.fp32_false_true, control.bool_false_true]
            given = [values for values in lists if len(values) > 0]
            if control.kind == _Control.CONTROL_SEQUENCE_CORRID:
                if given:
                    raise _fail(msg.CONTROL_CORRID_FALSE_TRUE, name=name, model=model)
                if control.data_type not in _CORRID_TYPES:
                    raise _fail(msg.CONTROL_CORRID_DATA_TYPE, name=name, model=model)
            elif len(given) != 1 or len(given[0]) != 2:
                kind = _Control.Kind.Name(control.kind)
                raise _fail(msg.CONTROL_FALSE_TRUE, name=name, kind=kind, model=model)


def _check_ensemble(cfg: ModelConfig) -> None:
    model = cfg.name
    if cfg.platform != "ensemble":
        if cfg.HasField("ensemble_scheduling"):
            raise _fail(msg.ENSEMBLE_WRONG_PLATFORM, model=model)
        return
    if not cfg.HasField("ensemble_scheduling") or not cfg.ensemble_scheduling.step:
        raise _fail(msg.ENSEMBLE_NO_SCHEDULING, model=model)
    if cfg.instance_group:
        raise _fail(msg.ENSEMBLE_INSTANCE_GROUP, model=model)
    if cfg.model_warmup:
        raise _fail(msg.WARMUP_ENSEMBLE, model=model)


__all__ = ["validate", "WILDCARD_DIM"]
