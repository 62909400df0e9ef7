"""What the sequence batcher adds to each request: control tensors and implicit state.

:class:`SequenceControls` turns ``sequence_batching.control_input`` into the per-request START,
END, READY and CORRID tensors (core ``CreateBooleanControlTensors`` / ``SetControlTensors``).
:class:`StateSpec` turns ``sequence_batching.state`` into initial state (core
``GenerateInitialStateData``), and :class:`SequenceState` carries one sequence's state outputs
into its next request's state inputs.

Shapes: a control tensor is ``[1]`` per request, ``[1, 1]`` when the model batches (batch dim plus
``[1]``); a state tensor is ``dims``, or ``[1] + dims`` when the model batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from tritonlite.datatypes import DataType, deserialize_bytes_tensor
from tritonlite.errors import InvalidArgumentError, TritonLiteError
from tritonlite.protos.model_config_pb2 import ModelSequenceBatching
from tritonlite.request import InferenceRequest, InferResult, RequestFlag, ResponseSink

_Control = ModelSequenceBatching.Control
_CORRID_TYPES = {
    DataType.UINT64: np.dtype(np.uint64),
    DataType.INT64: np.dtype(np.int64),
    DataType.UINT32: np.dtype(np.uint32),
    DataType.INT32: np.dtype(np.int32),
    DataType.BYTES: np.dtype(np.object_),
}


def _prefix(request: InferenceRequest) -> str:
    return f"[request id: {request.id or '<id_unknown>'}] "


@dataclass(frozen=True)
class _Flag:
    """One boolean control (START, END or READY): the tensor name and its false/true arrays."""

    name: str
    false: np.ndarray
    true: np.ndarray


class SequenceControls:
    """The control inputs a model asked for, ready to be added to ``backend_inputs``."""

    def __init__(self, config: Any) -> None:
        self.model_name = config.name
        self.batching = int(config.max_batch_size) > 0
        self._shape = (1, 1) if self.batching else (1,)
        self.start: _Flag | None = None
        self.end: _Flag | None = None
        self.ready: _Flag | None = None
        self.corrid_name = ""
        self.corrid_type: DataType | None = None
        for control_input in config.sequence_batching.control_input:
            for control in control_input.control:
                if control.kind == _Control.CONTROL_SEQUENCE_CORRID:
                    dt = DataType(int(control.data_type))
                    if dt not in _CORRID_TYPES:
                        raise InvalidArgumentError(
                            "unexpected control data type, expected TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32, "
                            f"or TYPE_STRING for CONTROL_SEQUENCE_CORRID for {self.model_name}"
                        )
                    self.corrid_name, self.corrid_type = control_input.name, dt
                    continue
                flag = self._flag(control_input.name, control)
                if control.kind == _Control.CONTROL_SEQUENCE_START:
                    self.start = flag
                elif control.kind == _Control.CONTROL_SEQUENCE_END:
                    self.end = flag
                elif control.kind == _Control.CONTROL_SEQUENCE_READY:
                    self.ready = flag

    def _flag(self, name: str, control: Any) -> _Flag:
        if len(control.int32_false_true):
            values, dtype = list(control.int32_false_true), np.int32
        elif len(control.fp32_false_true):
            values, dtype = list(control.fp32_false_true), np.float32
        else:
            values, dtype = list(control.bool_false_true), np.bool_
        if len(values) != 2:
            kind = _Control.Kind.Name(control.kind)
            raise InvalidArgumentError(
                f"sequence batching control must specify exactly one of 'int32_false_true', 'fp32_false_true' "
                f"or 'bool_false_true' with 2 entries for {kind} for {self.model_name}"
            )
        false = np.full(self._shape, values[0], dtype=dtype)
        true = np.full(self._shape, values[1], dtype=dtype)
        false.setflags(write=False)
        true.setflags(write=False)
        return _Flag(name, false, true)

    @property
    def names(self) -> frozenset[str]:
        """Every control tensor name (never client inputs)."""
        names = {f.name for f in (self.start, self.end, self.ready) if f is not None}
        if self.corrid_name:
            names.add(self.corrid_name)
        return frozenset(names)

    def check_correlation_id(self, request: InferenceRequest) -> None:
        """A string id needs a TYPE_STRING CORRID control, an integer id a numeric one (core Normalize)."""
        if self.corrid_type is None:
            return
        given = DataType.BYTES if isinstance(request.correlation_id, str) else DataType.UINT64
        wants_string = self.corrid_type is DataType.BYTES
        if (given is DataType.BYTES) != wants_string:
            raise InvalidArgumentError(
                f"{_prefix(request)}sequence batching control '{self.corrid_name}' data-type is '{given.name}', "
                f"but model '{self.model_name}' expects '{self.corrid_type.name}'"
            )

    def tensors(self, flags: int, correlation_id: int | str, ready: bool = True) -> dict[str, np.ndarray]:
        """The control tensors for one request; ``ready=False`` is a padding (null) request: all false, CORRID 0."""
        out: dict[str, np.ndarray] = {}
        start = ready and bool(flags & RequestFlag.SEQUENCE_START)
        end = ready and bool(flags & RequestFlag.SEQUENCE_END)
        for flag, value in ((self.start, start), (self.end, end), (self.ready, ready)):
            if flag is not None:
                out[flag.name] = flag.true if value else flag.false
        if self.corrid_type is not None:
            out[self.corrid_name] = self._corrid(correlation_id if ready else 0)
        return out

    def _corrid(self, correlation_id: int | str) -> np.ndarray:
        dt = self.corrid_type
        if dt is DataType.BYTES:
            value = correlation_id if isinstance(correlation_id, str) else ("" if correlation_id == 0 else str(correlation_id))
            arr = np.empty(self._shape, dtype=np.object_)
            arr.reshape(-1)[0] = value.encode("utf-8")
            return arr
        # The id travels as uint64; narrower types keep the low bits, signed types reinterpret them (core memcpy).
        raw = int(correlation_id) if not isinstance(correlation_id, str) else 0
        np_dtype = _CORRID_TYPES[dt]  # type: ignore[index]
        unsigned = np.uint64 if np_dtype.itemsize == 8 else np.uint32
        mask = (1 << (8 * np_dtype.itemsize)) - 1
        return np.array([raw & mask], dtype=unsigned).view(np_dtype).reshape(self._shape)


# --------------------------------------------------------------------------------------------- state
@dataclass(frozen=True)
class StateSpec:
    """One ``state`` entry: its tensor names, type, dims and the array a sequence starts from."""

    input_name: str
    output_name: str
    datatype: DataType
    dims: tuple[int, ...]
    initial: np.ndarray  # with the batch dim when the model batches

    @classmethod
    def all_from_config(cls, config: Any, model_dir: Path | None) -> list["StateSpec"]:
        """Every state of the config, validated as core ``Create``/``GenerateInitialStateData`` does."""
        batching = int(config.max_batch_size) > 0
        specs: list[StateSpec] = []
        seen: set[str] = set()
        for state in config.sequence_batching.state:
            if not state.input_name or not state.output_name:
                raise InvalidArgumentError(
                    f"sequence batching state of model '{config.name}' must set both 'input_name' and 'output_name'"
                )
            if state.input_name in seen:
                raise InvalidArgumentError(f"State input name '{state.input_name}' specified more than once.")
            seen.add(state.input_name)
            if len(state.initial_state) > 1:
                raise InvalidArgumentError(
                    f"initial_state field for state input '{state.input_name}' must contain exactly one or zero "
                    f"element. Found '{len(state.initial_state)}' elements."
                )
            dt = DataType(int(state.data_type))
            dims = tuple(int(d) for d in state.dims)
            if state.initial_state:
                initial = _initial_data(state, state.initial_state[0], dt, model_dir)
            else:
                # Triton hands out uninitialised memory here; zeros keep runs reproducible.
                shape = tuple(1 if d == -1 else d for d in dims)
                initial = _empty(dt, shape)
            if batching:
                initial = initial.reshape((1,) + initial.shape)
            initial.setflags(write=False)
            specs.append(cls(state.input_name, state.output_name, dt, dims, initial))
        return specs


def _empty(dt: DataType, shape: tuple[int, ...]) -> np.ndarray:
    if dt is DataType.BYTES:
        return np.full(shape, b"", dtype=np.object_)
    if dt is DataType.BF16:
        return np.zeros(shape, dtype=np.uint16)
    return np.zeros(shape, dtype=dt.numpy_dtype)


def _initial_data(state: Any, initial: Any, dt: DataType, model_dir: Path | None) -> np.ndarray:
    name = state.input_name
    if int(initial.data_type) != int(state.data_type):
        raise InvalidArgumentError(
            f"The data type used for 'initial_state' field of state '{name}' does not match the state data type."
        )
    if not initial.name:
        raise InvalidArgumentError(f"Field 'name' must be set when using initial_state for state input '{name}'.")
    if len(initial.dims) != len(state.dims):
        raise InvalidArgumentError(
            "Number of dimensions in 'initial_state' doesn't match the size of 'state' dimensions for state input "
            f"'{name}'. {len(initial.dims)} != {len(state.dims)}"
        )
    shape: list[int] = []
    for got, want in zip(initial.dims, state.dims):
        if got == -1:
            raise InvalidArgumentError(f"'initial_state' field for state input name '{name}' contains variable dimensions.")
        if want != -1 and got != want:
            raise InvalidArgumentError(
                f"'initial_state' dim for input name '{name}' doesn't match 'state' dim description. {got} != {want}"
            )
        shape.append(int(got))
    which = initial.WhichOneof("state_data")
    if which == "zero_data":
        return _empty(dt, tuple(shape))
    if which != "data_file":
        raise InvalidArgumentError(f"initial_state setting expects state'{name}' to have state_data set")
    if model_dir is None:
        raise InvalidArgumentError(
            f"initial_state data_file '{initial.data_file}' of state '{name}' needs the model directory, "
            "which the scheduler was not given"
        )
    path = Path(model_dir) / "initial_state" / initial.data_file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"failed to read initial_state file '{path}': {exc}") from exc
    count = int(np.prod(shape)) if shape else 1
    if dt is DataType.BYTES:  # length-prefixed elements, as warmup files hold them
        arr = deserialize_bytes_tensor(data)
        if arr.size != count:
            raise InvalidArgumentError(
                f"initial_state setting expects {count} elements, but the data provided from {initial.data_file} "
                f"has {arr.size} elements."
            )
        return arr.reshape(shape)
    np_dtype = np.dtype(np.uint16) if dt is DataType.BF16 else dt.numpy_dtype
    need = count * np_dtype.itemsize
    if len(data) < need:
        raise InvalidArgumentError(
            f"initial_state setting expects {need} bytes, but the data provided from {initial.data_file}only has "
            f"{len(data)} bytes."
        )
    return np.frombuffer(data[:need], dtype=np_dtype).reshape(shape).copy()


class SequenceState:
    """One sequence's implicit state: what its next request reads as state inputs."""

    __slots__ = ("specs", "values")

    def __init__(self, specs: list[StateSpec]) -> None:
        self.specs = specs
        self.values: dict[str, np.ndarray] = {s.input_name: s.initial for s in specs}

    def inputs(self) -> dict[str, np.ndarray]:
        return dict(self.values)

    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Keep each state output the model produced; a state it did not produce keeps its value."""
        for s in self.specs:
            value = outputs.get(s.output_name)
            if value is not None:
                self.values[s.input_name] = np.asarray(value)


def _discard(*_: Any) -> None:
    """The sink callback of a null request: its response goes nowhere and counts nowhere."""


def null_request(template: InferenceRequest, controls: SequenceControls) -> InferenceRequest:
    """A padding request shaped like ``template`` (already prepared): zero data, READY false, CORRID 0.

    Zeros rather than a copy of the template's data, so no sequence's inputs or state leak into a slot.
    """
    inputs: dict[str, np.ndarray] = {}
    for name, arr in template.backend_inputs.items():
        inputs[name] = np.full(arr.shape, b"", dtype=np.object_) if arr.dtype.kind == "O" else np.zeros(arr.shape, arr.dtype)
    inputs.update(controls.tensors(0, 0, ready=False))
    null = InferenceRequest(model_name=template.model_name, inputs={}, model_version=template.model_version)
    null.batch_size = template.batch_size
    null.backend_inputs = inputs
    null.sink = ResponseSink(_discard)
    return null


def state_sink(sink: ResponseSink, state: SequenceState, extra: tuple[str, ...]) -> ResponseSink:
    """A sink that keeps the state outputs for the sequence's next request and passes the rest on.

    ``extra`` are the state outputs the client did not ask for: they are removed from the response.
    """

    def on_response(result: InferResult | None, error: TritonLiteError | None, final: bool, reason: str) -> None:
        if error is not None:
            if final:
                sink.fail(error, reason)
            else:
                sink.send(InferResult(error=error), final=False)
            return
        if result is not None:
            state.update(result.outputs)
            for name in extra:
                result.outputs.pop(name, None)
        sink.send(result, final)

    return ResponseSink(on_response)


__all__ = ["SequenceControls", "SequenceState", "StateSpec", "null_request", "state_sink"]
