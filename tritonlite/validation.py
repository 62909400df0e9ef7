"""Request normalisation as Triton's core does it (``InferenceRequest::Normalize``).

An :class:`IOSpec` is built once per loaded model version from its config, so the per-request
check is a few dict lookups and tuple compares. Messages follow Triton's wording, because
clients and tests match on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tritonlite.datatypes import DataType, as_bytes_array
from tritonlite.errors import InvalidArgumentError
from tritonlite.request import InferenceRequest

_BATCH_NOTE = (
    "NOTE: Setting a non-zero max_batch_size in the model config requires a batch dimension to be "
    "prepended to each input shape. If you want to specify the full shape including the batch dim in "
    "your input dims config, try setting max_batch_size to zero. See the model configuration docs for "
    "more info on max_batch_size."
)


def _fmt_shape(shape: Any) -> str:
    return "[" + ",".join(str(int(d)) for d in shape) + "]"


def _fmt_names(names: Any) -> str:
    """Triton's list of names: ``['a','b']``."""
    return "[" + ",".join(f"'{n}'" for n in names) + "]"


class DeferredInputError(np.ndarray):
    """A decoded input whose data does not fit its declared shape (byte size, BYTES element count).

    It stands in for the tensor (a zero-stride array of the declared shape and datatype: no memory)
    so :func:`normalize_request` reports Triton's errors in Triton's order: names, count, datatype
    and shape first, then this one at the byte-size step. ``error`` is the message, ``prefixed``
    whether Triton puts ``[request id: ...]`` before it.
    """

    error: str = ""
    prefixed: bool = True
    #: the datatype the client declared (INVALID: a name Triton does not know)
    datatype: DataType = DataType.INVALID

    @classmethod
    def make(cls, datatype: DataType, shape: tuple[int, ...], error: str, prefixed: bool = True) -> "DeferredInputError":
        arr = np.broadcast_to(np.zeros((), dtype=np.uint8), shape).view(cls)
        arr.error, arr.prefixed, arr.datatype = error, prefixed, datatype
        return arr


@dataclass(frozen=True)
class InputSpec:
    """One config input, pre-digested for the hot path."""

    name: str
    datatype: DataType
    np_dtype: np.dtype
    dims: tuple[int, ...]
    variable: tuple[int, ...]  # positions of -1 in dims
    reshape: tuple[int, ...] | None
    optional: bool
    is_shape_tensor: bool


@dataclass(frozen=True)
class IOSpec:
    """The inputs/outputs contract of one model version."""

    model_name: str
    max_batch_size: int
    inputs: dict[str, InputSpec]
    required: frozenset[str]
    outputs: tuple[str, ...]
    output_set: frozenset[str]
    #: control/state inputs the scheduler adds itself (sequence batching); not client-facing
    internal_inputs: frozenset[str] = frozenset()

    @classmethod
    def from_config(cls, cfg: Any) -> "IOSpec":
        inputs: dict[str, InputSpec] = {}
        for inp in cfg.input:
            dt = DataType(inp.data_type)
            dims = tuple(int(d) for d in inp.dims)
            reshape = tuple(int(d) for d in inp.reshape.shape) if inp.HasField("reshape") else None
            inputs[inp.name] = InputSpec(
                name=inp.name,
                datatype=dt,
                np_dtype=dt.numpy_dtype if dt is not DataType.BF16 else np.dtype(np.uint16),
                dims=dims,
                variable=tuple(i for i, d in enumerate(dims) if d == -1),
                reshape=reshape,
                optional=inp.optional,
                is_shape_tensor=inp.is_shape_tensor,
            )
        outputs = tuple(o.name for o in cfg.output)
        return cls(
            model_name=cfg.name,
            max_batch_size=int(cfg.max_batch_size),
            inputs=inputs,
            required=frozenset(n for n, s in inputs.items() if not s.optional),
            outputs=outputs,
            output_set=frozenset(outputs),
        )


def _prefix(request: InferenceRequest) -> str:
    return f"[request id: {request.id or '<id_unknown>'}] "


def _hint(spec: InputSpec) -> str:
    """The numpy spelling of a model input's datatype, for messages that tell the caller what to pass."""
    return "np.object_" if spec.datatype is DataType.BYTES else f"np.{spec.np_dtype.name}"


def _coerce(value: Any, spec: InputSpec, request: InferenceRequest, model: str) -> np.ndarray:
    """Inputs are numpy arrays of the model's datatype; nothing is cast.

    A list or Python scalar is refused rather than converted (converting would pick a datatype the
    caller never chose, and would silently truncate 1.5 to 1 or wrap 300 to 44), exactly as a float64
    array is refused for an FP32 input: one rule, Triton's (``tritonclient`` takes only numpy arrays
    of the input's datatype). Numpy scalars count as 0-d arrays.
    """
    if isinstance(value, np.generic):
        value = np.asarray(value)
    elif not isinstance(value, np.ndarray):
        raise InvalidArgumentError(
            f"{_prefix(request)}inference input '{spec.name}' must be a numpy array, got {type(value).__name__}: "
            f"model '{model}' expects '{spec.datatype.name}' (np.asarray(value, dtype={_hint(spec)}))"
        )
    if spec.datatype is DataType.BYTES:
        if value.dtype.kind not in ("O", "S", "U"):
            raise InvalidArgumentError(
                f"{_prefix(request)}inference input '{spec.name}' data-type is '{DataType.from_numpy(value.dtype).name}', "
                f"but model '{model}' expects 'BYTES'"
            )
        if value.dtype.kind != "O" or any(type(v) is not bytes for v in value.reshape(-1)[:64]):
            value = as_bytes_array(value)
        return value
    if value.dtype != spec.np_dtype:
        try:
            got = DataType.from_numpy(value.dtype).name
        except InvalidArgumentError:
            got = str(value.dtype)
        raise InvalidArgumentError(
            f"{_prefix(request)}inference input '{spec.name}' data-type is '{got}', "
            f"but model '{model}' expects '{spec.datatype.name}'"
        )
    return value


def normalize_request(request: InferenceRequest, spec: IOSpec, model_name: str | None = None) -> None:
    """Validate ``request`` against ``spec`` and fill batch_size, output_names and backend_inputs.

    Raises :class:`InvalidArgumentError` with Triton's message on the first problem found.
    """
    model = model_name or spec.model_name
    given = request.inputs
    specs = spec.inputs
    # Triton's order (InferenceRequest::Normalize): requested outputs, the input count, input names,
    # batch sizes, then per input its datatype, shape and byte size
    if request.requested_outputs:
        for name in request.requested_outputs:
            if name not in spec.output_set:
                raise InvalidArgumentError(f"unexpected inference output '{name}' for model '{model}'")
    internal = spec.internal_inputs
    client = [n for n in given if n not in internal] if internal else given
    # Triton compares the count first and only then the names: a wrong name among the right number of
    # inputs is an unexpected input, not a missing one
    counted = len(spec.required) <= len(client) <= len(specs)
    if counted:
        for name in client:
            if name not in specs:
                raise InvalidArgumentError(f"unexpected inference input '{name}' for model '{model}'")
    if not counted or not spec.required <= given.keys():
        missing = [n for n in specs if n in spec.required and n not in given]
        expected = (
            f"number of inputs between {len(spec.required)} and {len(specs)}"
            if len(spec.required) != len(specs)
            else f"{len(specs)} inputs"
        )
        # Triton lists the given names in its hash map's order (the reverse of arrival for a few names)
        # and prints an empty missing list as "]"
        raise InvalidArgumentError(
            f"{_prefix(request)}expected {expected} but got {len(client)} inputs for model '{model}'. "
            f"Got input(s) {_fmt_names(reversed(client)) if client else '[]'}, but missing required input(s) "
            f"{_fmt_names(missing) if missing else ']'}. Please provide all required input(s)."
        )

    batching = spec.max_batch_size > 0
    batch_size = 0
    backend_inputs: dict[str, np.ndarray] = {}
    for name, raw in given.items():
        s = specs.get(name)
        if s is None:  # scheduler-provided input
            backend_inputs[name] = raw
            continue
        if type(raw) is DeferredInputError:  # checked like the rest, its own error comes at the byte-size step
            if raw.datatype is not s.datatype:
                got = "<invalid>" if raw.datatype is DataType.INVALID else raw.datatype.name
                raise InvalidArgumentError(
                    f"{_prefix(request)}inference input '{name}' data-type is '{got}', but model '{model}' expects '{s.datatype.name}'"
                )
            arr = raw
        else:
            arr = _coerce(raw, s, request, model)
        shape = arr.shape
        if batching and not s.is_shape_tensor:
            if len(shape) == 0:
                raise InvalidArgumentError(
                    f"{_prefix(request)}input '{name}' has no shape but model requires batch dimension for '{model}'"
                )
            if batch_size == 0:
                batch_size = shape[0]
                if batch_size > spec.max_batch_size or batch_size < 1:
                    raise InvalidArgumentError(
                        f"{_prefix(request)}inference request batch-size must be <= {spec.max_batch_size} for '{model}'"
                    )
            elif shape[0] != batch_size:
                raise InvalidArgumentError(
                    f"{_prefix(request)}input '{name}' batch size does not match other inputs for '{model}'"
                )
            item = shape[1:]
        else:
            item = shape
        dims = s.dims
        if s.variable:
            ok = len(item) == len(dims) and all(d == -1 or d == g for d, g in zip(dims, item))
        else:
            ok = item == dims
        if not ok:
            expected = ([-1] if batching else []) + list(dims)
            raise InvalidArgumentError(
                f"{_prefix(request)}unexpected shape for input '{name}' for model '{model}'. "
                f"Expected {_fmt_shape(expected)}, got {_fmt_shape(shape)}. {_BATCH_NOTE if batching else ''}"
            )
        if type(raw) is DeferredInputError:
            raise InvalidArgumentError(f"{_prefix(request) if raw.prefixed else ''}{raw.error}")
        if s.reshape is not None:
            var_values = iter(item[i] for i in s.variable)
            target = tuple(next(var_values, 1) if d == -1 else d for d in s.reshape)
            arr = arr.reshape((shape[0],) + target if batching else target)
        backend_inputs[name] = arr

    if request.requested_outputs:
        request.output_names = tuple(dict.fromkeys(request.requested_outputs))
    else:
        request.output_names = spec.outputs
    request.batch_size = batch_size
    request.backend_inputs = backend_inputs


def item_count(request: InferenceRequest) -> int:
    """Inferences a request counts for in statistics: its batch size, at least 1."""
    return request.batch_size or 1


__all__ = ["IOSpec", "InputSpec", "DeferredInputError", "normalize_request", "item_count"]
